//! The registry of kinds: built from the loaded plugins, never from a list in the host.
//!
//! Each plugin declares its token and group alias; the registry keeps them in load
//! order (bundled kinds in `plugins/order.txt` order, then plugin-directory kinds), and
//! group aliases are the union of what plugins declare, so a new plugin joins
//! `workloads` by saying so. [`Registry::resolve`] applies the kinds grammar
//! ([`expr`]) that every entry point shares.

pub mod expr;
mod live;
pub mod reload;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::plugin::Plugin;

pub use expr::{Enabled, ExprError};
pub use live::LiveKinds;

/// Why the loaded plugins do not form a usable registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kind token is also a group alias (or a reserved word), so expressions would be ambiguous.
    #[error("kind {token:?} from {source_name} clashes with {what}; rename the plugin's token")]
    Ambiguous {
        /// The clashing token.
        token: String,
        /// The plugin declaring it.
        source_name: String,
        /// What it clashes with.
        what: String,
    },
}

/// Resolves `expression` leaving out entries that name no loaded kind, each logged as
/// an error: at start-up with a plugin that failed to load, `watch.streams` may name
/// its kind, and the other kinds must still be served (issue 22). Other mistakes in
/// the expression are still errors.
pub fn resolve_without_missing(registry: &Registry, expression: &str) -> Result<Enabled, ExprError> {
    let mut entries: Vec<&str> = expression.split(',').collect();
    loop {
        let joined = if entries.is_empty() {
            "off".to_string()
        } else {
            entries.join(",")
        };
        match registry.resolve(&joined) {
            Err(ExprError::Unknown { entry, .. }) => {
                tracing::error!(kind = %entry, "watch.streams names {entry:?}, which no loaded plugin serves (see the plugin errors above); streaming the other kinds");
                entries.retain(|e| !e.trim().eq_ignore_ascii_case(&entry));
            }
            other => return other,
        }
    }
}

/// Kind tokens and group aliases: all the kinds grammar needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Kind tokens in registry order.
    pub tokens: Vec<String>,
    /// Group aliases and their kinds (registry order), sorted by alias.
    pub groups: BTreeMap<String, Vec<String>>,
}

impl Catalog {
    /// Adds a kind to the end of the registry order and to its group.
    pub fn push(&mut self, token: &str, group_alias: &str) {
        self.tokens.push(token.to_string());
        self.groups
            .entry(group_alias.to_string())
            .or_default()
            .push(token.to_string());
    }
}

/// The kinds this process serves, in registry order.
#[derive(Debug, Clone)]
pub struct Registry {
    plugins: Vec<Arc<Plugin>>,
    catalog: Catalog,
}

impl Registry {
    /// Builds the registry from loaded plugins (unique tokens, as loading guarantees).
    pub fn new(plugins: Vec<Arc<Plugin>>) -> Result<Registry, Error> {
        let mut catalog = Catalog::default();
        for plugin in &plugins {
            catalog.push(&plugin.info().token, &plugin.info().group_alias);
        }
        for plugin in &plugins {
            let token = &plugin.info().token;
            let what = if expr::RESERVED.contains(&token.as_str()) {
                Some(format!("the reserved word {token:?}"))
            } else if catalog.groups.contains_key(token) {
                Some(format!("the group alias {token:?}"))
            } else {
                None
            };
            if let Some(what) = what {
                return Err(Error::Ambiguous {
                    token: token.clone(),
                    source_name: plugin.source().to_string(),
                    what,
                });
            }
        }
        Ok(Registry { plugins, catalog })
    }

    /// Every kind, in registry order.
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }

    /// The plugin of kind `token`.
    pub fn get(&self, token: &str) -> Option<&Arc<Plugin>> {
        self.plugins.iter().find(|p| p.info().token == token)
    }

    /// Kind tokens and group aliases.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Resolves a kinds expression (`all`, `off`, `pods,workloads`, …).
    pub fn resolve(&self, expression: &str) -> Result<Enabled, ExprError> {
        expr::resolve(&self.catalog, expression)
    }
}
