//! The permissions a credential can hold, by Whop's names.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    LeadBasicRead,
    LeadManage,
    LeadBasicExport,
    MemberEmailRead,
    MemberBasicRead,
    AccessPassBasicRead,
    DeveloperManageWebhook,
}

impl Permission {
    pub const ALL: [Permission; 7] = [
        Permission::LeadBasicRead,
        Permission::LeadManage,
        Permission::LeadBasicExport,
        Permission::MemberEmailRead,
        Permission::MemberBasicRead,
        Permission::AccessPassBasicRead,
        Permission::DeveloperManageWebhook,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Permission::LeadBasicRead => "lead:basic:read",
            Permission::LeadManage => "lead:manage",
            Permission::LeadBasicExport => "lead:basic:export",
            Permission::MemberEmailRead => "member:email:read",
            Permission::MemberBasicRead => "member:basic:read",
            Permission::AccessPassBasicRead => "access_pass:basic:read",
            Permission::DeveloperManageWebhook => "developer:manage_webhook",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of permissions; stored as a comma-separated list of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Permissions(u8);

impl Permissions {
    pub fn all() -> Self {
        Self::from_iter(Permission::ALL)
    }

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    pub fn intersection(self, other: Permissions) -> Self {
        Self(self.0 & other.0)
    }

    /// The ones in `needed` this set lacks, in a stable order.
    pub fn missing(self, needed: &[Permission]) -> Vec<Permission> {
        needed
            .iter()
            .copied()
            .filter(|p| !self.contains(*p))
            .collect()
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// Parses `a,b,c`; the error names the first unknown permission.
    pub fn parse_list(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| Permission::parse(name).ok_or_else(|| name.to_owned()))
            .collect()
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, p| bits | p.bit()))
    }
}

/// As a JSON array of names, the way clients and `--json` output show them.
impl serde::Serialize for Permissions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Permission::name))
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Permission::name).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_and_unknown_names_are_reported() {
        let set = Permissions::parse_list("lead:basic:read, member:email:read").unwrap();
        assert!(set.contains(Permission::MemberEmailRead));
        assert!(!set.contains(Permission::LeadManage));
        assert_eq!(Permissions::parse_list(&set.to_string()).unwrap(), set);
        assert_eq!(
            Permissions::parse_list("lead:basic:read,lead:fly").unwrap_err(),
            "lead:fly"
        );
        assert_eq!(Permissions::all().iter().count(), 7);
    }
}
