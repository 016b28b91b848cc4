//! `matchConstraints` of a policy and `matchResources` of a binding: the
//! same rules and selectors as webhooks (shared through
//! [`super::super::webhook::matching`]), plus `resourceNames` and
//! `excludeResourceRules`.

use serde_json::Value;
use vcluster_core::selector::Selector;

use super::super::webhook::matching::{self, Rule};
use super::super::Attributes;
use crate::registry::Registry;

/// A parsed `MatchResources`.
#[derive(Debug, Default)]
pub struct MatchResources {
    rules: Vec<Rule>,
    excluded: Vec<Rule>,
    namespace_selector: Option<Selector>,
    object_selector: Option<Selector>,
}

impl MatchResources {
    /// Parses a stored `MatchResources`; `None` for a missing one. A
    /// selector that does not parse matches nothing.
    pub fn parse(value: Option<&Value>) -> Result<Option<Self>, String> {
        let Some(value) = value.filter(|v| v.is_object()) else {
            return Ok(None);
        };
        let rules = |field: &str| -> Vec<Rule> {
            value
                .get(field)
                .and_then(Value::as_array)
                .map(|rules| rules.iter().map(Rule::parse).collect())
                .unwrap_or_default()
        };
        Ok(Some(Self {
            rules: rules("resourceRules"),
            excluded: rules("excludeResourceRules"),
            namespace_selector: matching::selector(value.get("namespaceSelector"))?,
            object_selector: matching::selector(value.get("objectSelector"))?,
        }))
    }

    /// Whether the request is matched: a rule names it, no exclusion
    /// does, and both selectors match. `require_rules`: with no rules
    /// nothing matches (a policy's constraints); without, rules are not
    /// checked (a binding that only narrows by selectors).
    pub async fn matches(
        &self,
        registry: &Registry,
        attributes: &Attributes<'_>,
        object: &Value,
        require_rules: bool,
    ) -> Result<bool, String> {
        let name = match crate::object::name(object) {
            "" => attributes.old.map(crate::object::name).unwrap_or(""),
            name => name,
        };
        let named = |rule: &&Rule| rule.matches(attributes) && rule.names_match(name);
        if (require_rules || !self.rules.is_empty()) && !self.rules.iter().any(|r| named(&r)) {
            return Ok(false);
        }
        if self.excluded.iter().any(|r| named(&r)) {
            return Ok(false);
        }
        if !matching::object_matches(self.object_selector.as_ref(), object, attributes.old) {
            return Ok(false);
        }
        matching::namespace_matches(
            registry,
            self.namespace_selector.as_ref(),
            attributes,
            object,
        )
        .await
    }
}
