//! Where a run's app and services come from, once `--backend auto` is resolved: the one
//! backend type below the command line, recorded in every summary. What each backend needs
//! from the plan is checked here, before anything starts.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::setup::Setup;

/// The backend actually used; recorded in every summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Local,
    Docker,
    External,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Docker => "docker",
            BackendKind::External => "external",
        }
    }
}

impl BackendKind {
    /// What this backend needs from the plan that a plan may leave out, checked before
    /// anything starts: the local backend builds and runs `[app.local]`, the docker backend
    /// runs `[app.docker]`'s image (or `PERF_APP_IMAGE`); `external` needs only the app's URL.
    /// The two that start the app also refuse a template naming a service the run does not
    /// start ([`Setup::check_services`]); `external` renders no template.
    pub fn check_setup(self, setup: &Setup) -> Result<(), String> {
        let missing = match self {
            BackendKind::Local => setup.app.local.is_none(),
            BackendKind::Docker => setup.app.docker.is_none(),
            BackendKind::External => return Ok(()),
        };
        if missing { Err(self.missing_setup()) } else { setup.check_services() }
    }

    /// What [`BackendKind::check_setup`] says when the plan lacks what this backend needs.
    pub fn missing_setup(self) -> String {
        const ELSEWHERE: &str = "or, for a service started elsewhere, --backend external --app-url URL (which needs no [app] table)";
        match self {
            BackendKind::Local => format!(
                "the local backend builds and runs the app from [app.local] (`command`, and `build` when it needs one), \
                 and the plan has no [app.local]: add one, {ELSEWHERE}"
            ),
            BackendKind::Docker => format!(
                "the docker backend runs the app's image from [app.docker] (`image`, and `dockerfile` to build it when it is \
                 missing) or PERF_APP_IMAGE, and the plan has neither: add one, {ELSEWHERE}"
            ),
            BackendKind::External => String::new(),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
