//! `epic-audit checks` and `epic-audit explain`: the policy's catalogue and
//! one check's long explanation.

use crate::cli::Format;
use crate::policy::Policy;

/// The `checks` listing.
pub(crate) fn render_catalogue(p: &Policy, format: Format) -> String {
    match format {
        Format::Json => {
            let v: Vec<serde_json::Value> = p
                .checks
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id, "area": c.area, "severity": c.severity, "title": c.title,
                        "hipaa": c.hipaa, "rule": c.rule, "enabled": c.enabled,
                        "params": plain_json(&toml::Value::Table(c.params.clone())),
                    })
                })
                .collect();
            serde_json::to_string_pretty(&v).expect("catalogue serialises") + "\n"
        }
        Format::Table => {
            let mut s = format!(
                "{:<8} {:<11} {:<9} {:<58} {}\n",
                "ID", "AREA", "SEVERITY", "TITLE", "HIPAA (45 CFR)"
            );
            for c in &p.checks {
                let title = if c.enabled {
                    c.title.clone()
                } else {
                    format!("{} (disabled)", c.title)
                };
                s.push_str(&format!(
                    "{:<8} {:<11} {:<9} {:<58} {}\n",
                    c.id,
                    c.area.to_string(),
                    c.severity.to_string(),
                    title,
                    crate::hipaa::list(&c.hipaa)
                ));
            }
            for t in p.advisory_tables() {
                s.push_str(&format!(
                    "\n{}\n",
                    t.summary(chrono::Utc::now().date_naive())
                ));
                for src in &t.sources {
                    s.push_str(&format!("  {src}\n"));
                }
            }
            s.push_str(&format!(
                "\n{} checks from {} policy (digest {}). `epic-audit explain ID` for details.\n",
                p.checks.len(),
                p.source,
                p.digest
            ));
            s
        }
    }
}

/// A TOML value as JSON, dates as their text (`2026-12-06`), not serde's
/// private datetime wrapper.
fn plain_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => a.iter().map(plain_json).collect(),
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| (k.clone(), plain_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => serde_json::to_value(other).unwrap_or(serde_json::Value::Null),
    }
}

/// The `explain` text.
pub(crate) fn explain(c: &crate::policy::CheckDef) -> String {
    let rules = crate::checks::registry();
    let method = rules
        .get(c.rule.as_str())
        .map(|r| r.method)
        .unwrap_or("(unknown rule)");
    let indent = |t: &str| {
        t.trim()
            .lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let params = if c.params.is_empty() {
        "  (none)".to_string()
    } else {
        indent(&toml::to_string(&c.params).unwrap_or_default())
    };
    format!(
        "{id}  {title}\n\
         area: {area} · severity: {sev} · HIPAA (45 CFR): {hipaa}\n\
         rule: {rule} (defined in {src}){disabled}\n\n\
         Why it matters\n{why}\n\n\
         How it is probed\n{how}\n\n\
         Parameters\n{params}\n\n\
         How to fix\n{fix}\n",
        id = c.id,
        title = c.title,
        area = c.area,
        sev = c.severity,
        hipaa = crate::hipaa::list(&c.hipaa),
        rule = c.rule,
        src = c.source,
        disabled = if c.enabled {
            ""
        } else {
            "\nDISABLED in the policy: reported as skip"
        },
        why = indent(&c.rationale),
        how = indent(&textwrap(method, 76)),
        fix = indent(&c.remediation),
    )
}

fn textwrap(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for w in s.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    out.push_str(&line);
    out
}

/// The `user NAME ...` line of a least-privilege user for `policy`, with
/// a comment saying how to use it: the exporters' when `role` says so or
/// `user` is the one the policy's MON-007 judges, else the audit user's
/// (with the policy's session patterns).
pub(crate) fn print_acl(
    policy: &Policy,
    user: Option<&str>,
    role: Option<crate::cli::AclRole>,
) -> String {
    use crate::cli::AclRole;
    let exporter = policy.exporter_user().unwrap_or("exporter");
    let role = role.unwrap_or(if user == Some(exporter) {
        AclRole::Exporter
    } else {
        AclRole::Auditor
    });
    if role == AclRole::Exporter {
        let user = user.unwrap_or(exporter);
        return format!(
            "# The least-privilege user prometheus-redis-exporter logs in as (MON-007; see `epic-audit print-acl --help`):\n\
             # the commands it sends with its default flags, no key, no channel, no write.\n\
             # Replace PASSWORD_SHA256 with the SHA-256 of its password (printf %s \"$PW\" | sha256sum),\n\
             # put the line in the aclfile of every node and run ACL LOAD on each; start each exporter with\n\
             # -redis.user {user} and REDIS_PASSWORD from a secret (and -config-command NAME where CONFIG is renamed;\n\
             # the ACL keeps +config|get). Flags like -check-keys need key access: MON-006 fails them.\n\
             user {user} on #PASSWORD_SHA256 {}\n",
            crate::probes::exporter_rules()
        );
    }
    let user = user.unwrap_or("auditor");
    let patterns: Vec<String> = crate::engine::session_pattern(policy).into_iter().collect();
    format!(
        "# The least-privilege user epic-audit audits as (read-only; see `epic-audit print-acl --help`).\n\
         # Replace PASSWORD_SHA256 with the SHA-256 of its password (printf %s \"$PW\" | sha256sum),\n\
         # put the line in the aclfile of every node and run ACL LOAD on each (or ACL SETUSER with the same rules).\n\
         # Where CONFIG is renamed (rename-command), keep +config|get: ACL rules name the original command;\n\
         # tell the audit the new name with config_command in the environment.\n\
         user {user} on #PASSWORD_SHA256 {}\n",
        crate::probes::auditor_rules(&patterns)
    )
}
