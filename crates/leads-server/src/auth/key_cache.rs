//! Company API keys this instance has looked up, remembered by the hash of their secret.
//!
//! A key's company and permissions never change after it is made; only whether it is revoked
//! does. So a remembered key skips the lookup by hash, and its being unrevoked is re-checked by
//! id in the same round trip as the request's own read (or, where that is not possible, on its
//! own): a revocation still takes effect at once on every instance. Only keys found valid are
//! remembered, so unknown secrets cannot fill the cache.

use super::CredentialKind;
use crate::domain::{CompanyId, KeyId, Permissions};
use std::collections::HashMap;
use std::sync::Mutex;

/// Keys remembered at most; past it, an arbitrary one is forgotten for each new one.
pub const DEFAULT_CAPACITY: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedKey {
    pub key: KeyId,
    pub company: CompanyId,
    pub permissions: Permissions,
}

#[derive(Debug)]
pub struct KeyCache {
    capacity: usize,
    keys: Mutex<HashMap<[u8; 32], RememberedKey>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl KeyCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            keys: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<RememberedKey> {
        self.lock().get(hash).cloned()
    }

    pub fn remember(&self, hash: [u8; 32], key: RememberedKey) {
        if self.capacity == 0 {
            return;
        }
        let mut keys = self.lock();
        if keys.len() >= self.capacity && !keys.contains_key(&hash) {
            if let Some(any) = keys.keys().next().copied() {
                keys.remove(&any);
            }
        }
        keys.insert(hash, key);
    }

    pub fn forget(&self, hash: &[u8; 32]) {
        self.lock().remove(hash);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], RememberedKey>> {
        // The map holds no invariant a panicking holder could break.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RememberedKey {
    pub fn kind(&self) -> CredentialKind {
        CredentialKind::CompanyApiKey {
            key: self.key.clone(),
            company: self.company.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RememberedKey {
        RememberedKey {
            key: KeyId::generate(),
            company: CompanyId::generate(),
            permissions: Permissions::all(),
        }
    }

    #[test]
    fn remembers_forgets_and_stays_within_its_capacity() {
        let cache = KeyCache::new(3);
        let first = key();
        cache.remember([1; 32], first.clone());
        assert_eq!(cache.get(&[1; 32]), Some(first));
        for n in 2..10u8 {
            cache.remember([n; 32], key());
            assert!(cache.len() <= 3);
        }
        assert!(cache.get(&[9; 32]).is_some());
        cache.forget(&[9; 32]);
        assert_eq!(cache.get(&[9; 32]), None);
        let off = KeyCache::new(0);
        off.remember([1; 32], key());
        assert!(off.is_empty());
    }
}
