//! A referral's status, derived from its event list, never stored.
//!
//! Events are folded in list order through the transition table of [`ReferralStatus::after`].
//! An event the current status does not allow (an approval after a withdrawal, a second
//! supervisor's contrary decision) stays in the history but is *not applied*, and is reported so
//! that a supervisor sees the conflict. Automerge orders concurrent insertions into a list the
//! same way on every replica, so every replica derives the same status from the same history.

use super::values::EventKind;

/// Where a referral stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReferralStatus {
    /// Written, not yet submitted.
    Draft,
    Submitted,
    Accepted,
    NeedsDocuments,
    Approved,
    Rejected,
    Enrolled,
    Closed,
    Withdrawn,
}

impl ReferralStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Accepted => "accepted",
            Self::NeedsDocuments => "needs-documents",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Enrolled => "enrolled",
            Self::Closed => "closed",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// The status after `event`, or `None` when the event does not apply in this status.
    pub fn after(self, event: EventKind) -> Option<Self> {
        use EventKind as E;
        use ReferralStatus as S;
        Some(match (self, event) {
            (S::Draft | S::Withdrawn | S::Rejected, E::Submitted) => S::Submitted,
            (S::Draft | S::Submitted | S::Accepted | S::NeedsDocuments, E::Withdrawn) => {
                S::Withdrawn
            }
            (S::Draft | S::Submitted | S::Accepted, E::DocumentsAdded) => self,
            // Documents arrived: back to the supervisor's queue.
            (S::NeedsDocuments, E::DocumentsAdded) => S::Submitted,
            (S::Submitted | S::NeedsDocuments, E::Accepted) => S::Accepted,
            (S::Submitted | S::Accepted, E::NeedsDocuments) => S::NeedsDocuments,
            (S::Submitted | S::Accepted | S::NeedsDocuments, E::Approved) => S::Approved,
            (S::Submitted | S::Accepted | S::NeedsDocuments, E::Rejected) => S::Rejected,
            (S::Approved, E::Enrolled) => S::Enrolled,
            (S::Approved | S::Rejected | S::Enrolled | S::Withdrawn, E::Closed) => S::Closed,
            _ => return None,
        })
    }

    /// Whether the referral waits for a supervisor.
    pub fn awaits_supervisor(self) -> bool {
        matches!(self, Self::Submitted | Self::Accepted)
    }
}

/// The status, and which events (by index in the list) were not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub status: ReferralStatus,
    pub not_applied: Vec<usize>,
}

/// Folds the events, in list order, from `Draft`.
pub fn derive_status(events: impl IntoIterator<Item = EventKind>) -> Derived {
    let mut status = ReferralStatus::Draft;
    let mut not_applied = Vec::new();
    for (i, kind) in events.into_iter().enumerate() {
        match status.after(kind) {
            Some(next) => status = next,
            None => not_applied.push(i),
        }
    }
    Derived {
        status,
        not_applied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventKind as E;
    use ReferralStatus as S;

    #[test]
    fn the_usual_path() {
        let d = derive_status([
            E::Submitted,
            E::NeedsDocuments,
            E::DocumentsAdded,
            E::Accepted,
            E::Approved,
            E::Enrolled,
            E::Closed,
        ]);
        assert_eq!(
            d,
            Derived {
                status: S::Closed,
                not_applied: vec![]
            }
        );
    }

    #[test]
    fn a_decision_after_a_withdrawal_is_kept_but_not_applied() {
        let d = derive_status([E::Submitted, E::Withdrawn, E::Approved]);
        assert_eq!(
            d,
            Derived {
                status: S::Withdrawn,
                not_applied: vec![2]
            }
        );
        let d = derive_status([E::Submitted, E::Approved, E::Withdrawn]);
        assert_eq!(
            d,
            Derived {
                status: S::Approved,
                not_applied: vec![2]
            }
        );
    }

    #[test]
    fn two_contrary_decisions_the_first_in_the_list_wins() {
        let d = derive_status([E::Submitted, E::Rejected, E::Approved]);
        assert_eq!(
            d,
            Derived {
                status: S::Rejected,
                not_applied: vec![2]
            }
        );
    }

    #[test]
    fn a_rejected_or_withdrawn_referral_can_be_submitted_again() {
        assert_eq!(
            derive_status([E::Submitted, E::Rejected, E::Submitted]).status,
            S::Submitted
        );
        assert_eq!(
            derive_status([E::Submitted, E::Withdrawn, E::Submitted]).status,
            S::Submitted
        );
        assert_eq!(derive_status([]).status, S::Draft);
    }
}
