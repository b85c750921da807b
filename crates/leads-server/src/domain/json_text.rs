//! JSON text whose strings are not Unicode.
//!
//! JSON escapes characters outside the Basic Multilingual Plane as two `\u` escapes, a UTF-16
//! high surrogate then a low one (RFC 8259 §7). An escape of one surrogate without its partner
//! ("\ud800") spells no character at all: serde_json refuses it in a `String` but lets it through
//! in raw JSON (metadata is kept raw), and a client reading it back would get text that is not
//! Unicode. RFC 8259 §8.2 leaves such strings' behaviour unpredictable, so the API refuses them,
//! naming the parameter they are in.

/// Whether any string in `json`, a valid JSON text, holds a lone surrogate escape: a high
/// surrogate (`\ud800`..`\udbff`) not followed at once by a low one (`\udc00`..`\udfff`), or a
/// low one not preceded by a high one. Object keys count as strings.
pub fn has_lone_surrogate(json: &str) -> bool {
    // Nearly every text has no `\u` escape at all.
    if !json.contains("\\u") {
        return false;
    }
    let bytes = json.as_bytes();
    let (mut at, mut in_string, mut high_pending) = (0, false, false);
    while at < bytes.len() {
        let byte = bytes[at];
        if !in_string {
            in_string = byte == b'"';
            at += 1;
            continue;
        }
        if byte == b'\\' && bytes.get(at + 1) == Some(&b'u') {
            let Some(unit) = bytes.get(at + 2..at + 6).and_then(hex4) else {
                return false; // not valid JSON: not ours to judge here
            };
            match unit {
                0xD800..=0xDBFF if high_pending => return true,
                0xD800..=0xDBFF => high_pending = true,
                0xDC00..=0xDFFF if high_pending => high_pending = false,
                0xDC00..=0xDFFF => return true,
                _ if high_pending => return true,
                _ => {}
            }
            at += 6;
            continue;
        }
        if high_pending {
            return true;
        }
        match byte {
            b'\\' => at += 2, // a one-character escape: `\"`, `\\`, `\n`...
            b'"' => {
                in_string = false;
                at += 1;
            }
            _ => at += 1,
        }
    }
    high_pending
}

/// Four hex digits as a UTF-16 code unit.
fn hex4(digits: &[u8]) -> Option<u16> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|text| u16::from_str_radix(text, 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_surrogates_and_other_escapes_are_unicode() {
        for text in [
            r#"{}"#,
            r#""plain é 😀""#,
            r#""\ud83d\ude00""#,
            r#""\uD83D\uDE00 and \u00e9""#,
            r#"{"\ud83d\ude00": ["\u0041", "\\ud800"]}"#,
            r#""\\\\ud800""#,
            r#""\"\ud800\udc00\"""#,
        ] {
            assert!(!has_lone_surrogate(text), "{text}");
        }
    }

    #[test]
    fn a_surrogate_without_its_partner_is_found_anywhere() {
        for text in [
            r#""\ud800""#,
            r#""\uD800x""#,
            r#""\udc00""#,
            r#""a\ud800\u0041""#,
            r#""\ud800\ud800\udc00""#,
            r#""\ud800\n""#,
            r#"{"a": {"b": [1, "\udfff"]}}"#,
            r#"{"\ud800": 1}"#,
            r#"["ok", "\ud83d"]"#,
        ] {
            assert!(has_lone_surrogate(text), "{text}");
        }
    }
}
