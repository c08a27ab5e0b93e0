//! `[app]`: the health path, the local backend's commands and the app's environment, checked
//! whatever the backend: their templates may name only what the backends resolve.

use super::templates::{locate, parse_template};
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::model::LocalAppSpec;
use crate::plan::setup::APP_ENV_NAMES;
use crate::plan::template::{self, RawPart};

/// `[app]`: a health path, a command to run the app, and templates over the names each backend
/// resolves.
pub(super) fn check_app(lp: &LoadedPlan) -> Result<(), PlanError> {
    let app = &lp.plan.app;
    if let Some(health) = &app.health
        && !health.starts_with('/')
    {
        return Err(lp.error("app.health", format!("{health:?} must be a path starting with `/`")));
    }
    let empty = LocalAppSpec { build: Vec::new(), command: Vec::new() };
    let local = app.local.as_ref().unwrap_or(&empty);
    if app.local.is_some() && local.command.is_empty() {
        return Err(
            lp.error("app.local.command", "the command that runs the app is empty: expected an argv list like [\"target/debug/myapp\"]")
        );
    }
    // The command may also name where cargo builds; the build step only that.
    let command_names: Vec<&str> = APP_ENV_NAMES.iter().copied().chain(["cargo.target_dir"]).collect();
    for (table, argv, allowed) in
        [("command", &local.command, command_names.as_slice()), ("build", &local.build, &["cargo.target_dir"][..])]
    {
        for (i, arg) in argv.iter().enumerate() {
            let field = format!("app.local.{table}[{i}]");
            let parts = template::parse(arg).map_err(|e| lp.error(&field, e.message))?;
            for part in parts {
                if let RawPart::Var { name, .. } = part
                    && !allowed.contains(&name.as_str())
                {
                    return Err(
                        lp.error(&field, format!("unknown name `{name}` in the app's {table}: expected one of {}", allowed.join(", ")))
                    );
                }
            }
        }
    }
    for (key, value) in &app.env {
        let field = format!("app.env.{key}");
        for part in parse_template(lp, value, &field)? {
            if let RawPart::Var { name, .. } = part
                && !APP_ENV_NAMES.contains(&name.as_str())
            {
                return Err(lp.error_at(
                    locate(lp, value.span(), &name),
                    &field,
                    format!("unknown name `{name}` in the app's environment: expected one of {}", APP_ENV_NAMES.join(", ")),
                ));
            }
        }
    }
    Ok(())
}
