//! What the engine remembers of each key between reconciles ([`Memory`]),
//! shared by the engine (which keeps it), the syncers (which read it in
//! their decisions) and the label and annotation rules (which compare with
//! it).

use std::collections::BTreeMap;

/// What the engine remembers of a key between reconciles: enough to tell
/// which side changed a field that flows both ways. Lost on restart, after
/// which the virtual side wins every difference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// The host object existed at the last reconcile (so its absence now
    /// means someone deleted it).
    pub host_seen: bool,
    /// The virtual labels as of the last successful sync.
    pub labels: BTreeMap<String, String>,
    /// The virtual annotations as of the last successful sync.
    pub annotations: BTreeMap<String, String>,
    /// The pair as last found in step: the virtual and host
    /// resourceVersions and a fingerprint of the namespace labels. While
    /// nothing of that changed, a kind whose decisions depend only on the
    /// pair ([`Syncer::pair_decides`](crate::Syncer::pair_decides)) needs no reconcile; this is what
    /// makes the watch echo of the syncer's own create free.
    pub in_step: Option<InStep>,
    /// What the last reconcile wrote, until the stores show it.
    pub written: Written,
}

/// The versions the syncer's last writes replaced and produced, per side.
///
/// A watch store can lag the syncer's own write; a reconcile that still
/// sees the replaced version would compare stale data with fresh memory
/// and could take a tenant's new label for one the host removed. While a
/// store shows a replaced version, the key waits for the store instead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The host object: (resourceVersion written over, resourceVersion the
    /// last write returned).
    pub host: Option<(String, String)>,
    /// The same for the virtual object.
    pub virtual_object: Option<(String, String)>,
}

impl Written {
    /// Whether either store still shows a version a write replaced.
    pub fn lags(&self, virtual_version: Option<&str>, host_version: Option<&str>) -> bool {
        let behind = |written: &Option<(String, String)>, now: Option<&str>| {
            written
                .as_ref()
                .is_some_and(|(replaced, made)| replaced != made && now == Some(replaced.as_str()))
        };
        behind(&self.host, host_version) || behind(&self.virtual_object, virtual_version)
    }

    /// Records a write that replaced `before` and returned `after`.
    pub(crate) fn note(
        slot: &mut Option<(String, String)>,
        before: Option<&str>,
        after: Option<&str>,
    ) {
        let (Some(before), Some(after)) = (before, after) else {
            return;
        };
        match slot {
            // Several writes in one reconcile: the first replaced version
            // is the stale one, the last returned the newest.
            Some((_, made)) => *made = after.to_owned(),
            None => *slot = Some((before.to_owned(), after.to_owned())),
        }
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.host.is_none() && self.virtual_object.is_none()
    }
}

/// See [`Memory::in_step`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InStep {
    /// The virtual object's resourceVersion.
    pub virtual_version: String,
    /// The host object's resourceVersion.
    pub host_version: String,
    /// A fingerprint of the virtual namespace's labels (pods carry them).
    pub namespace_labels: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_lags_while_it_shows_a_replaced_version() {
        let mut written = Written::default();
        assert!(!written.lags(Some("1"), Some("1")));
        Written::note(&mut written.host, Some("22"), Some("24"));
        Written::note(&mut written.host, Some("24"), Some("25"));
        assert_eq!(written.host, Some(("22".into(), "25".into())));
        assert!(
            written.lags(Some("7"), Some("22")),
            "the host store is behind"
        );
        assert!(!written.lags(Some("7"), Some("25")));
        // Someone wrote after us: newer than ours, not stale.
        assert!(!written.lags(Some("7"), Some("30")));
        // A write that changed nothing (same version back) never waits.
        let mut no_op = Written::default();
        Written::note(&mut no_op.virtual_object, Some("9"), Some("9"));
        assert!(!no_op.lags(Some("9"), None));
        Written::note(&mut no_op.virtual_object, None, Some("10"));
        assert_eq!(no_op.virtual_object, Some(("9".into(), "9".into())));
    }
}
