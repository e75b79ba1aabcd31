//! Loading a policy: the YAML read as Kubernetes reads the ConfigMap it comes from, then
//! every rule the types cannot state checked once, so a typo is an error naming the key and
//! the line instead of a silent default. It sits above the registry and the egress model
//! (check ids are the registry's, allow-list addresses and host names the egress model's),
//! which both read the policy's types: the types themselves (`policy.rs`) depend on neither.

use super::checks;
use super::egress::{cidr, fqdn};
use super::openshift;
use super::policy::{Action, Policy, PolicyError};
use super::selector;
use std::path::Path;

impl Policy {
    /// Load a policy from a YAML file.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Policy::from_yaml(&text, &path.display().to_string())
    }

    /// Parse and validate a policy. `origin` names the source in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let parse_error = |message: String| PolicyError::Parse {
            path: origin.to_string(),
            message,
        };
        // Read as Kubernetes reads the ConfigMap it comes from (YAML 1.1 scalars), but a key
        // written twice is refused rather than silently taking the last one.
        let docs = crate::yaml::read_stream(text, crate::yaml::Duplicates::Refuse)
            .map_err(|e| parse_error(e.to_string()))?;
        let mut docs = docs.into_iter().filter(|d| !d.value.is_null());
        let policy: Policy = match (docs.next(), docs.next()) {
            (None, _) => Policy::default(),
            (Some(doc), None) => {
                crate::yaml::from_document(&doc).map_err(|e| parse_error(e.to_string()))?
            }
            (Some(_), Some(second)) => {
                return Err(parse_error(format!(
                    "line {}: a second YAML document; the policy is one document",
                    second.marks.line
                )));
            }
        };
        policy.validate(origin)?;
        Ok(policy)
    }

    /// Semantic checks that the types cannot express.
    pub fn validate(&self, origin: &str) -> Result<(), PolicyError> {
        let bad = |key: &str, message: String| PolicyError::Invalid {
            path: origin.to_string(),
            key: key.to_string(),
            message,
        };
        let known = checks::ids().collect::<Vec<_>>().join(", ");
        for (i, id) in self.disabled_checks.iter().enumerate() {
            if checks::by_id(id).is_none() {
                return Err(bad(
                    &format!("disabledChecks[{i}]"),
                    format!("unknown check id {id:?}; known: {known}"),
                ));
            }
        }
        for id in self.check_tiers.keys() {
            if checks::by_id(id).is_none() {
                return Err(bad(
                    &format!("checkTiers.{id}"),
                    format!("unknown check id {id:?}; known: {known}"),
                ));
            }
        }
        for (i, class) in self.checks.runtime.allowed_classes.iter().enumerate() {
            if class.trim().is_empty() {
                return Err(bad(
                    &format!("checks.runtime.allowedClasses[{i}]"),
                    "an empty RuntimeClass name matches nothing; name one, or a pattern such as kata*"
                        .into(),
                ));
            }
        }
        for (i, ex) in self.exemptions.iter().enumerate() {
            for (j, id) in ex.checks.iter().enumerate() {
                if checks::by_id(id).is_none() {
                    return Err(bad(
                        &format!("exemptions[{i}].checks[{j}]"),
                        format!("unknown check id {id:?}; known: {known}"),
                    ));
                }
            }
            if let Some(expires) = &ex.expires {
                super::date::parse_utc(expires)
                    .map_err(|e| bad(&format!("exemptions[{i}].expires"), e.to_string()))?;
            }
            if ex.namespaces.is_empty() && ex.users.is_empty() && ex.groups.is_empty() {
                return Err(bad(
                    &format!("exemptions[{i}]"),
                    "an exemption must name at least one of namespaces, users or groups".into(),
                ));
            }
        }
        let a = &self.approvals;
        for (key, value) in [
            ("approvals.maxLifetime", &a.max_lifetime),
            ("approvals.legacyGrace", &a.legacy_grace),
        ] {
            super::date::parse_length(value).map_err(|e| bad(key, e.to_string()))?;
        }
        if let Some(until) = &a.legacy_until {
            super::date::parse_utc(until)
                .map_err(|e| bad("approvals.legacyUntil", e.to_string()))?;
        }
        if self.agent_selectors.is_empty() {
            return Err(bad(
                "agentSelectors",
                "at least one selector is needed to find agent pods".into(),
            ));
        }
        for (i, sel) in self.agent_selectors.iter().enumerate() {
            if selector::is_empty(sel) {
                return Err(bad(
                    &format!("agentSelectors[{i}]"),
                    "an empty selector would make every pod an agent; name at least one label"
                        .into(),
                ));
            }
            for (j, e) in sel.match_expressions.iter().flatten().enumerate() {
                check_operator(&e.operator, e.values.as_deref().unwrap_or(&[]))
                    .map_err(|m| bad(&format!("agentSelectors[{i}].matchExpressions[{j}]"), m))?;
            }
        }
        for (i, name) in self.openshift_sccs.iter().enumerate() {
            // Filling in for an SCC the engine does not know would be a guess, and a wrong
            // guess passes a Pod that runs as root.
            if openshift::by_name(name).is_none() {
                return Err(bad(
                    &format!("openShiftSccs[{i}]"),
                    format!(
                        "unknown SCC {name:?}; known: {}",
                        openshift::known_names().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        if self.catch_all.action == Action::Audit {
            return Err(bad("catchAll.action", "allowed values: warn, deny".into()));
        }
        for (i, pattern) in self.catch_all.images.iter().enumerate() {
            // Patterns match the repository alone: a tag or digest would never match.
            let last = pattern.rsplit('/').next().unwrap_or(pattern);
            if pattern.trim().is_empty() || pattern.contains('@') || last.contains(':') {
                return Err(bad(
                    &format!("catchAll.images[{i}]"),
                    format!(
                        "{pattern:?}: an image repository or a pattern of one, without tag or digest (e.g. openclaw/openclaw, */openclaw*)"
                    ),
                ));
            }
        }
        for (i, cap) in self.checks.capabilities.allowed_add.iter().enumerate() {
            if cap.starts_with("CAP_") || cap.is_empty() || cap != &cap.to_uppercase() {
                return Err(bad(
                    &format!("checks.capabilities.allowedAdd[{i}]"),
                    format!(
                        "{cap:?} is not a capability name as Kubernetes spells it (upper case, no CAP_ prefix, e.g. NET_BIND_SERVICE)"
                    ),
                ));
            }
        }
        for (i, p) in self.checks.rbac.escape_powers.iter().enumerate() {
            let key = format!("checks.rbac.escapePowers[{i}]");
            if p.name.trim().is_empty() {
                return Err(bad(
                    &format!("{key}.name"),
                    "name the power; messages show it (e.g. exec into pods)".into(),
                ));
            }
            for (field, list) in [
                ("apiGroups", &p.api_groups),
                ("resources", &p.resources),
                ("verbs", &p.verbs),
            ] {
                // An empty list would match no rule: a power that is never reported.
                if list.is_empty() {
                    return Err(bad(
                        &format!("{key}.{field}"),
                        format!(
                            "{:?} matches no rule with an empty {field}; name at least one (\"\" is the core API group)",
                            p.name
                        ),
                    ));
                }
            }
            if let Some(r) = p.resources.iter().find(|r| r.is_empty() || r.contains('*')) {
                return Err(bad(
                    &format!("{key}.resources"),
                    format!(
                        "{r:?}: name resources exactly (pods, pods/exec); a role's own wildcards are matched against them"
                    ),
                ));
            }
        }
        for (i, a) in self.checks.egress.allow.iter().enumerate() {
            if !matches!(a.protocol.as_str(), "TCP" | "UDP" | "SCTP") {
                return Err(bad(
                    &format!("checks.egress.allow[{i}].protocol"),
                    format!("{:?}; allowed values: TCP, UDP, SCTP", a.protocol),
                ));
            }
            if !(1..=65535).contains(&a.port) || a.end_port.is_some_and(|e| e < a.port || e > 65535)
            {
                return Err(bad(
                    &format!("checks.egress.allow[{i}].port"),
                    "ports are 1-65535 and endPort is not below port".into(),
                ));
            }
            for (field, list) in [("cidrs", &a.cidrs), ("except", &a.except)] {
                for (j, c) in list.iter().enumerate() {
                    cidr::parse(c)
                        .map_err(|m| bad(&format!("checks.egress.allow[{i}].{field}[{j}]"), m))?;
                }
            }
            for (j, f) in a.fqdns.iter().enumerate() {
                fqdn::check_fqdn_pattern(f)
                    .map_err(|m| bad(&format!("checks.egress.allow[{i}].fqdns[{j}]"), m))?;
            }
            if !a.fqdns.is_empty()
                && (!a.cidrs.is_empty()
                    || !a.namespaces.is_empty()
                    || a.namespace_selector.is_some()
                    || a.pod_selector.is_some())
            {
                return Err(bad(
                    &format!("checks.egress.allow[{i}].fqdns"),
                    "an entry names hosts, or addresses, or namespaces and pods, not two of them; write one entry per kind of destination".into(),
                ));
            }
            if !a.except.is_empty() && a.cidrs.is_empty() {
                return Err(bad(
                    &format!("checks.egress.allow[{i}].except"),
                    "except needs cidrs to carve from".into(),
                ));
            }
            for (field, sel) in [
                ("namespaceSelector", &a.namespace_selector),
                ("podSelector", &a.pod_selector),
            ] {
                for (j, e) in sel
                    .iter()
                    .flat_map(|s| s.match_expressions.iter().flatten())
                    .enumerate()
                {
                    check_operator(&e.operator, e.values.as_deref().unwrap_or(&[])).map_err(
                        |m| {
                            bad(
                                &format!("checks.egress.allow[{i}].{field}.matchExpressions[{j}]"),
                                m,
                            )
                        },
                    )?;
                }
            }
        }
        let t = &self.telemetry;
        let is_url = t.endpoint.starts_with("http://") || t.endpoint.starts_with("https://");
        if !t.endpoint.is_empty() && !is_url {
            return Err(bad(
                "telemetry.endpoint",
                format!(
                    "{:?} is not an http:// or https:// URL (e.g. http://otel-collector.observability.svc:4318/v1/traces)",
                    t.endpoint
                ),
            ));
        }
        if t.max_queue_size == 0 {
            return Err(bad("telemetry.maxQueueSize", "must be at least 1".into()));
        }
        for k in t.headers.keys() {
            let token = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(bad(
                    &format!("telemetry.headers.{k}"),
                    "not an HTTP header name".into(),
                ));
            }
        }
        let max = self.checks.token.max_expiration_seconds;
        if max < 600 {
            return Err(bad(
                "checks.token.maxExpirationSeconds",
                format!("{max} is below the API minimum of 600"),
            ));
        }
        let exp = self.mutations.token.expiration_seconds;
        if exp < 600 || exp > max || exp == 3607 {
            return Err(bad(
                "mutations.token.expirationSeconds",
                format!(
                    "{exp}; allowed: 600 to checks.token.maxExpirationSeconds ({max}), never 3607 (API servers may extend a 3607 s token to a year)"
                ),
            ));
        }
        if self
            .mutations
            .token
            .volume_name
            .starts_with("kube-api-access-")
        {
            return Err(bad(
                "mutations.token.volumeName",
                "must not start with kube-api-access- (the ServiceAccount admission plugin owns those names)".into(),
            ));
        }
        if !self.mutations.secrets_store.mount_path.starts_with('/') {
            return Err(bad(
                "mutations.secretsStore.mountPath",
                "must be an absolute path".into(),
            ));
        }
        if self.mutations.otel.enabled && self.mutations.otel.endpoint.is_empty() {
            return Err(bad(
                "mutations.otel.endpoint",
                "must be set when the OTel mutation is enabled".into(),
            ));
        }
        Ok(())
    }
}

fn check_operator(op: &str, values: &[String]) -> Result<(), String> {
    match op {
        "In" | "NotIn" if values.is_empty() => Err(format!("operator {op} needs values")),
        "In" | "NotIn" => Ok(()),
        "Exists" | "DoesNotExist" if !values.is_empty() => {
            Err(format!("operator {op} takes no values"))
        }
        "Exists" | "DoesNotExist" => Ok(()),
        other => Err(format!(
            "unknown operator {other:?}; allowed: In, NotIn, Exists, DoesNotExist"
        )),
    }
}
