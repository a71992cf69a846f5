//! Who may change what. The same check runs on the phone before a local change is made and on
//! the server on every incoming change; docs/schema.md has the table.
//!
//! A change is judged by the state it leaves ([`FieldDocument::read_state`] must accept it) and
//! by what it did to the state before it: who created the document, in which area, which
//! referral events it added. Because the check compares states rather than single operations,
//! a later change that repairs an invalid one makes the pair acceptable together.
//!
//! Two things states cannot show are judged on the Automerge document itself, by
//! [`super::check_applied`] (history.rs): where a new event was inserted, and whether a change
//! of an author who may only append events did anything else.

use std::collections::HashMap;

use automerge::ObjId;

use super::attachment::Attachment;
use super::document::{DocKind, Event, FieldDocument, SCHEMA, Violation};
use super::values::{EventKind, RegionCode, Role};

/// Who makes a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub role: Role,
    /// The author's user id, which `createdBy` of a new document and `by` of a new event must
    /// name. `None` only while identity is not established: then it is not checked.
    pub user: Option<String>,
    /// The area scopes (region code prefixes) the author works in. `None` only while identity
    /// is not established: then every area is in scope.
    pub areas: Option<Vec<RegionCode>>,
}

impl Author {
    /// A known user with their role and area scopes.
    pub fn user(id: impl Into<String>, role: Role, areas: Vec<RegionCode>) -> Self {
        Self {
            role,
            user: Some(id.into()),
            areas: Some(areas),
        }
    }

    /// Someone whose identity is not established: only the role's rules apply.
    pub fn anonymous(role: Role) -> Self {
        Self {
            role,
            user: None,
            areas: None,
        }
    }

    /// Whether `area` lies in one of the author's scopes.
    pub fn in_scope(&self, area: &RegionCode) -> bool {
        self.areas
            .as_ref()
            .is_none_or(|scopes| scopes.iter().any(|s| s.covers(area)))
    }
}

/// What a change does to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Writes the first state of a document.
    Create,
    /// Changes anything other than adding referral events.
    Edit,
    /// Appends an event of this kind to a referral.
    AddEvent(EventKind),
}

/// The table of role × document type × action (docs/schema.md).
pub fn permits(role: Role, kind: DocKind, action: Action) -> bool {
    match (role, action) {
        (_, Action::AddEvent(event)) => kind == DocKind::Referral && event.may_be_added_by(role),
        (Role::Peksos, Action::Create | Action::Edit) => true,
        (Role::Coordinator, Action::Create | Action::Edit) => kind == DocKind::Outreach,
        (Role::Supervisor | Role::Admin, Action::Create | Action::Edit) => false,
    }
}

/// Whether `author` may read (be sent) a document in this state. An empty document holds
/// nothing: anyone but an administrator may open it.
pub fn may_read(author: &Author, doc: Option<&FieldDocument>) -> bool {
    let Some(doc) = doc else {
        return author.role != Role::Admin;
    };
    may_read_placed(author, doc.kind(), &doc.envelope().area)
}

/// Whether `author` may read a field document of this type in this area: [`may_read`] for a
/// document known only by its query row.
pub fn may_read_placed(author: &Author, kind: DocKind, area: &RegionCode) -> bool {
    let by_role = match author.role {
        Role::Peksos | Role::Coordinator => true,
        // Supervisors review referrals, and the visits they come from.
        Role::Supervisor => kind != DocKind::Outreach,
        Role::Admin => false,
    };
    by_role && author.in_scope(area)
}

/// Whether `author` may take a document from `before` to `after` (each as
/// [`FieldDocument::read_state`] returns it: `None` for an empty document). Every violation is
/// reported at once.
///
/// This sees states only: the server judges a peer's changes with [`super::check_applied`],
/// which adds what only the Automerge document shows (where new events were inserted).
pub fn check_change(
    before: Option<&FieldDocument>,
    after: Option<&FieldDocument>,
    author: &Author,
) -> Result<(), Vec<Violation>> {
    let mut check = Check {
        author,
        violations: Vec::new(),
    };
    if let Some(FieldDocument::Newer(envelope)) = after {
        let message = format!(
            "schema version {} is not known to these rules, which know version {SCHEMA}",
            envelope.schema
        );
        check.fail("schema", message);
    }
    match (before, after) {
        (None, None) => {}
        (Some(_), None) => check.fail("", "a field document cannot be emptied"),
        (None, Some(after)) => check.create(after),
        (Some(before), Some(after)) => check.edit(before, after),
    }
    if check.violations.is_empty() {
        Ok(())
    } else {
        Err(check.violations)
    }
}

/// Why an author whose role may not edit this type of document cannot make a change that does
/// more than append events.
pub(super) fn edit_refused(role: Role, kind: DocKind) -> String {
    if kind == DocKind::Referral && role == Role::Supervisor {
        "a supervisor may only add decision events to a referral".to_owned()
    } else {
        format!(
            "a {} may not edit a {} document",
            role.as_str(),
            kind.as_str()
        )
    }
}

struct Check<'a> {
    author: &'a Author,
    violations: Vec<Violation>,
}

fn events(doc: &FieldDocument) -> &[Event] {
    match doc {
        FieldDocument::Referral(r) => &r.events,
        _ => &[],
    }
}

/// The document without its events, to see whether anything besides events changed.
fn without_events(doc: &FieldDocument) -> FieldDocument {
    let mut doc = doc.clone();
    if let FieldDocument::Referral(r) = &mut doc {
        r.events.clear();
    }
    doc
}

impl Check<'_> {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.violations.push(Violation {
            path: path.into(),
            message: message.into(),
        });
    }

    fn role(&self) -> &'static str {
        self.author.role.as_str()
    }

    fn create(&mut self, after: &FieldDocument) {
        let envelope = after.envelope();
        let kind = envelope.kind;
        if !permits(self.author.role, kind, Action::Create) {
            let message = format!(
                "a {} may not create a {} document",
                self.role(),
                kind.as_str()
            );
            self.fail("type", message);
            return;
        }
        if let Some(user) = &self.author.user
            && &envelope.created_by != user
        {
            self.fail("createdBy", "must be the author's user id");
        }
        if !self.author.in_scope(&envelope.area) {
            let message = format!("{} is outside the author's areas", envelope.area);
            self.fail("area", message);
        }
        for (i, event) in events(after).iter().enumerate() {
            self.new_event(i, event);
        }
    }

    fn edit(&mut self, before: &FieldDocument, after: &FieldDocument) {
        let (b, a) = (before.envelope(), after.envelope());
        if a.kind != b.kind {
            let message = format!(
                "cannot change from {} to {}",
                b.kind.as_str(),
                a.kind.as_str()
            );
            self.fail("type", message);
            return;
        }
        if a.created_by != b.created_by {
            self.fail("createdBy", "cannot change once the document exists");
        }
        if a.created_at != b.created_at {
            self.fail("createdAt", "cannot change once the document exists");
        }
        if a.schema < b.schema {
            let message = format!("cannot go back from {} to {}", b.schema, a.schema);
            self.fail("schema", message);
        }
        if !self.author.in_scope(&b.area) {
            let message = format!(
                "the document's area {} is outside the author's areas",
                b.area
            );
            self.fail("area", message);
            return;
        } else if a.area != b.area && !self.author.in_scope(&a.area) {
            let message = format!(
                "cannot move the document to {}, outside the author's areas",
                a.area
            );
            self.fail("area", message);
        }

        self.attachments_diff(before.attachments(), after.attachments());
        let added = self.events_diff(events(before), events(after));
        // Anything but appending events is an edit; so is a change this build cannot see
        // (fields it does not know, the body of a newer schema).
        let only_events = added > 0 && without_events(before) == without_events(after);
        if !only_events && !permits(self.author.role, a.kind, Action::Edit) {
            self.fail("", edit_refused(self.author.role, a.kind));
        }
    }

    /// Checks that every attachment of `before` still in `after` is unchanged: an entry is
    /// removed and another added, never edited in place, so a reference the server
    /// authorised a read by never silently points at other bytes. (Whether the author may
    /// add or remove entries at all is the edit rule: attachments are the document's
    /// content.)
    fn attachments_diff(&mut self, before: &[Attachment], after: &[Attachment]) {
        for (i, new) in after.iter().enumerate() {
            let old = before
                .iter()
                .find(|old| old.id.is_some() && old.id == new.id);
            if old.is_some_and(|old| old != new) {
                self.fail(
                    format!("attachments[{i}]"),
                    "attachments are never changed: remove this one and add a new one",
                );
            }
        }
    }

    /// Checks that every event of `before` is still in `after`, unchanged, and that each new
    /// one may be added by the author. Returns how many were added.
    fn events_diff(&mut self, before: &[Event], after: &[Event]) -> usize {
        let by_id: HashMap<&ObjId, (usize, &Event)> = after
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.id.as_ref().map(|id| (id, (i, e))))
            .collect();
        for (i, old) in before.iter().enumerate() {
            match old.id.as_ref().and_then(|id| by_id.get(id)) {
                None => self.fail(
                    format!("events[{i}]"),
                    "events are append-only: this one was removed",
                ),
                Some((j, new)) if *new != old => self.fail(
                    format!("events[{j}]"),
                    "events are append-only: this one was changed",
                ),
                Some(_) => {}
            }
        }
        let known: Vec<&ObjId> = before.iter().filter_map(|e| e.id.as_ref()).collect();
        let mut added = 0;
        for (i, event) in after.iter().enumerate() {
            if event.id.as_ref().is_some_and(|id| known.contains(&id)) {
                continue;
            }
            added += 1;
            self.new_event(i, event);
        }
        added
    }

    fn new_event(&mut self, i: usize, event: &Event) {
        if !permits(
            self.author.role,
            DocKind::Referral,
            Action::AddEvent(event.kind),
        ) {
            let message = format!(
                "a {} may not add a {} event",
                self.role(),
                event.kind.as_str()
            );
            self.fail(format!("events[{i}].kind"), message);
        }
        if let Some(user) = &self.author.user
            && &event.by != user
        {
            self.fail(format!("events[{i}].by"), "must be the author's user id");
        }
    }
}
