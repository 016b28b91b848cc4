//! The health of the control plane's parts, as `componentstatuses`
//! reports it: the storage, which the server checks itself, and the parts
//! an embedder runs beside it (a controller manager, whatever schedules
//! pods), each a [`Component`] with its own check.

use std::fmt;
use std::sync::Arc;

/// What a check says: healthy with a message, or unhealthy with an error.
pub type Health = Result<String, String>;

/// One control-plane part and how to check it.
#[derive(Clone)]
pub struct Component {
    /// The name `kubectl get componentstatuses` shows (`scheduler`,
    /// `controller-manager`).
    pub name: String,
    check: Arc<dyn Fn() -> Health + Send + Sync>,
}

impl Component {
    /// A part checked by `check` on every read.
    pub fn new(
        name: impl Into<String>,
        check: impl Fn() -> Health + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            check: Arc::new(check),
        }
    }

    /// A part that is healthy as long as the server runs (it runs in the
    /// same process), with `message`.
    pub fn in_process(name: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(name, move || Ok(message.clone()))
    }

    /// The scheduler and controller manager of a real control plane,
    /// reported unhealthy: this server runs neither by itself.
    pub fn not_run_here() -> Vec<Self> {
        ["scheduler", "controller-manager"]
            .into_iter()
            .map(|name| {
                Self::new(name, move || {
                    Err(format!("no {name} runs beside this API server"))
                })
            })
            .collect()
    }

    /// Runs the check.
    pub fn check(&self) -> Health {
        (self.check)()
    }
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
