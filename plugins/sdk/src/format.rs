//! Value formats such as `Bearer {token}`, `Token token={token}` or `{base64:email:token}`.
//!
//! A placeholder substitutes a whole field value, or joins whole values for Basic-style
//! schemes. There is deliberately no slicing, padding or width: a format must never be able to
//! reveal part of a secret. `{{` and `}}` write literal braces.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// One placeholder of a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// `{name}`: the field's whole value.
    Field(String),
    /// `{base64:a:b}`: base64 of `a:b`, the two fields' whole values.
    Base64(String, String),
}

/// Why a format cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The format itself is malformed.
    Malformed(String),
    /// It names a field the lookup does not have.
    Missing(String),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed format: {why}"),
            Self::Missing(name) => write!(f, "the format uses `{name}`, which the credential does not have"),
        }
    }
}

enum Piece<'a> {
    Text(&'a str),
    Brace(char),
    Slot(Placeholder),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn pieces(format: &str) -> Result<Vec<Piece<'_>>, FormatError> {
    let mut out = Vec::new();
    let mut rest = format;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            out.push(Piece::Brace('{'));
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            out.push(Piece::Brace('}'));
            rest = after;
        } else if let Some(after) = rest.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| FormatError::Malformed("`{` without a closing `}`".into()))?;
            let inner = &after[..end];
            let slot = match inner.split(':').collect::<Vec<_>>().as_slice() {
                [name] if valid_name(name) => Placeholder::Field((*name).to_owned()),
                ["base64", a, b] if valid_name(a) && valid_name(b) => {
                    Placeholder::Base64((*a).to_owned(), (*b).to_owned())
                }
                _ => {
                    return Err(FormatError::Malformed(
                        "a placeholder is `{field}` or `{base64:field:field}`; no other forms (slicing, padding) exist"
                            .into(),
                    ));
                }
            };
            out.push(Piece::Slot(slot));
            rest = &after[end + 1..];
        } else if rest.starts_with('}') {
            return Err(FormatError::Malformed(
                "`}` without an opening `{` (write `}}` for a literal brace)".into(),
            ));
        } else {
            let end = rest.find(['{', '}']).unwrap_or(rest.len());
            out.push(Piece::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Ok(out)
}

/// The placeholders of `format`, or why it is malformed.
pub fn parse(format: &str) -> Result<Vec<Placeholder>, FormatError> {
    Ok(pieces(format)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Slot(slot) => Some(slot),
            _ => None,
        })
        .collect())
}

/// Expands `format`, taking field values from `lookup`.
pub fn expand<'a>(format: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> Result<String, FormatError> {
    let mut out = String::with_capacity(format.len() + 32);
    for piece in pieces(format)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Brace(c) => out.push(c),
            Piece::Slot(Placeholder::Field(name)) => out.push_str(lookup(&name).ok_or(FormatError::Missing(name))?),
            Piece::Slot(Placeholder::Base64(a, b)) => {
                let va = lookup(&a).ok_or(FormatError::Missing(a))?;
                let vb = lookup(&b).ok_or(FormatError::Missing(b))?;
                out.push_str(&crate::encoding::base64(format!("{va}:{vb}").as_bytes()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(name: &str) -> Option<&'static str> {
        match name {
            "token" => Some("t0k"),
            "email" => Some("me@x.io"),
            _ => None,
        }
    }

    #[test]
    fn expands_whole_values_only() {
        assert_eq!(expand("Bearer {token}", look).unwrap(), "Bearer t0k");
        assert_eq!(expand("{base64:email:token}", look).unwrap(), "bWVAeC5pbzp0MGs=");
        assert_eq!(expand("{{literal}} {token}", look).unwrap(), "{literal} t0k");
        assert_eq!(expand("{nope}", look), Err(FormatError::Missing("nope".into())));
        for bad in [
            "{token",
            "token}",
            "{token:.4}",
            "{token:>8}",
            "{}",
            "{base64:token}",
            "{base64:a:b:c}",
            "{to ken}",
        ] {
            assert!(matches!(expand(bad, look), Err(FormatError::Malformed(_))), "{bad}");
        }
        assert_eq!(
            parse("{a} {base64:b:c}").unwrap(),
            vec![
                Placeholder::Field("a".into()),
                Placeholder::Base64("b".into(), "c".into())
            ]
        );
    }
}
