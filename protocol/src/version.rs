//! Protocol versions and their negotiation.
//!
//! A peer lists the versions it speaks in `join.supportedProtocolVersions`; the server answers
//! with the newest version both sides speak in `peer.selectedProtocolVersion`. Every later frame
//! of that connection is read and written with the selected version. Adding "2" means adding a
//! variant here and a codec for it beside [`crate::Message`]'s; "1" keeps working unchanged for
//! old phones in the field.

use std::fmt;

/// A protocol version this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// The automerge-repo protocol as spoken by `@automerge/automerge-repo` 2.x.
    V1,
}

impl ProtocolVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "1",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        SUPPORTED_VERSIONS.iter().copied().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every version this build speaks, newest first.
pub const SUPPORTED_VERSIONS: &[ProtocolVersion] = &[ProtocolVersion::V1];

/// The peer offered no version we speak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no common protocol version: peer offered [{offered}], this server supports [{supported}]")]
pub struct NoCommonVersion {
    pub offered: String,
    pub supported: String,
}

/// Picks the newest version both sides speak.
pub fn negotiate(offered: &[String]) -> Result<ProtocolVersion, NoCommonVersion> {
    SUPPORTED_VERSIONS
        .iter()
        .copied()
        .find(|ours| offered.iter().any(|theirs| theirs == ours.as_str()))
        .ok_or_else(|| NoCommonVersion {
            offered: offered
                .iter()
                .take(8)
                .map(|v| format!("{:?}", v.chars().take(16).collect::<String>()))
                .collect::<Vec<_>>()
                .join(", "),
            supported: SUPPORTED_VERSIONS
                .iter()
                .map(|v| format!("{:?}", v.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_v1_when_offered_among_others() {
        let offered = vec!["2".to_owned(), "1".to_owned()];
        assert_eq!(negotiate(&offered), Ok(ProtocolVersion::V1));
    }

    #[test]
    fn refusal_names_the_supported_versions() {
        let err = negotiate(&["0".to_owned(), "9".to_owned()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"no common protocol version: peer offered ["0", "9"], this server supports ["1"]"#
        );
        assert!(negotiate(&[]).is_err());
    }
}
