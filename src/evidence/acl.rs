//! What the ACL probe observes: users, ACL LOG counts, the DRYRUN matrix,
//! policy cases and live logins, and the COMMAND table the sweep used.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One node's access-control state, observed without changing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclView {
    /// `ACL USERS` with `ACL GETUSER` of each.
    pub users: Vec<AclUser>,
    /// `ACL LOG` summary (read before this run's own auth attempts).
    pub log: AclLogSummary,
    /// DRYRUN sweep: user -> command -> verdicts, one letter per sample key
    /// tried (the user's entry in `dryrun_keys`, else [`DRYRUN_KEYS`]) or
    /// one letter for commands without keys:
    /// `A` allowed, `C` command denied, `K` key denied, `H` channel denied,
    /// `E` error (see `dryrun_errors`).
    pub dryrun: BTreeMap<String, BTreeMap<String, DryRunLetters>>,
    /// DRYRUN replies that were neither OK nor a permission denial.
    pub dryrun_errors: Vec<DryRunError>,
    /// Number of ACL DRYRUN calls made on this node.
    pub dryrun_calls: usize,
    /// The policy's explicit cases.
    pub cases: Vec<CaseResult>,
    /// Live authentication attempts.
    pub auth: AuthObservation,
    /// The sample keys the sweep tried for each user, in letter order
    /// ([`dryrun_sample_keys`]). Absent in evidence from before it was
    /// recorded: then [`DRYRUN_KEYS`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dryrun_keys: BTreeMap<String, Vec<String>>,
    /// The node whose DRYRUN sweep `dryrun`, `dryrun_errors`, `cases` and
    /// `dryrun_keys` are, when it is not this one: the two hold the same
    /// ACL (every user's rules and salted password fingerprints, from ACL
    /// GETUSER) and the same COMMAND table, which together decide every
    /// DRYRUN verdict, so one sweep serves both. Absent: swept here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dryrun_swept_on: Option<String>,
}

impl AclView {
    /// The sample keys behind `user`'s DRYRUN letters.
    pub(crate) fn sample_keys(&self, user: &str) -> Vec<String> {
        match self.dryrun_keys.get(user) {
            Some(k) => k.clone(),
            None => DRYRUN_KEYS.iter().map(|k| k.to_string()).collect(),
        }
    }
}

/// The sample keys of evidence recorded before the sweep derived its keys
/// from the users' patterns: one in the seed policy's session namespace,
/// one outside every pattern of the seed policy.
pub(crate) const DRYRUN_KEYS: [&str; 2] =
    ["session:epic-audit-dryrun", "epic-audit-dryrun:outside"];

/// The name a pattern's `*` stands for in a sample key.
const SAMPLE_WORD: &str = "epic-audit-dryrun";

/// The most sample keys tried per user (each costs one DRYRUN per keyed
/// command).
pub(crate) const MAX_SAMPLE_KEYS: usize = 8;

/// Redis-style glob match (`*`, `?`, `[...]`, `[^...]`, ranges, `\\`).
pub(crate) fn glob(pattern: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') => (0..=s.len()).any(|i| m(&p[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && m(&p[1..], &s[1..]),
            Some(b'[') => {
                let Some(&c) = s.first() else { return false };
                let mut i = 1;
                let neg = p.get(1) == Some(&b'^');
                if neg {
                    i += 1;
                }
                let mut hit = false;
                while i < p.len() && p[i] != b']' {
                    if p[i] == b'\\' && i + 1 < p.len() {
                        hit |= p[i + 1] == c;
                        i += 2;
                    } else if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                        let (a, b) = (p[i].min(p[i + 2]), p[i].max(p[i + 2]));
                        hit |= (a..=b).contains(&c);
                        i += 3;
                    } else {
                        hit |= p[i] == c;
                        i += 1;
                    }
                }
                if i >= p.len() {
                    // Unterminated class: Redis treats it as ending here.
                    return hit != neg && m(&[], &s[1..]);
                }
                hit != neg && m(&p[i + 1..], &s[1..])
            }
            Some(b'\\') if p.len() > 1 => s.first() == Some(&p[1]) && m(&p[2..], &s[1..]),
            Some(&c) => s.first() == Some(&c) && m(&p[1..], &s[1..]),
        }
    }
    m(pattern.as_bytes(), s.as_bytes())
}

/// The key patterns in an `ACL GETUSER` keys string or selector text:
/// `~p`, `%R~p`, `%W~p`, `%RW~p` give `p`; `allkeys` gives `*`.
pub(crate) fn acl_key_patterns(keys: &str) -> Vec<String> {
    keys.split_whitespace()
        .map(|t| t.trim_matches(|c| c == '(' || c == ')'))
        .filter_map(|t| {
            if t == "allkeys" {
                Some("*".to_string())
            } else if let Some(p) = t.strip_prefix('~') {
                Some(p.to_string())
            } else if t.starts_with('%') {
                t.split_once('~').map(|(_, p)| p.to_string())
            } else {
                None
            }
        })
        .collect()
}

/// A concrete key that `pattern` matches: `*` becomes `epic-audit-dryrun`,
/// `?` and a class their first allowed character. None when the result
/// does not match (an unusual class).
pub(crate) fn sample_key(pattern: &str) -> Option<String> {
    sample_key_with(pattern, SAMPLE_WORD)
}

/// [`sample_key`] with `word` for every `*` (e.g. a probe key's own name).
pub(crate) fn sample_key_with(pattern: &str, word: &str) -> Option<String> {
    let b = pattern.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'*' => out.extend_from_slice(word.as_bytes()),
            b'?' => out.push(b'x'),
            b'\\' if i + 1 < b.len() => {
                out.push(b[i + 1]);
                i += 1;
            }
            b'[' => {
                let end = b[i..].iter().position(|&c| c == b']').map(|e| i + e);
                let first = b.get(i + 1).copied();
                match (first, end) {
                    (Some(b'^'), Some(e)) => {
                        // Any character the class does not exclude.
                        let class = std::str::from_utf8(&b[i..=e]).ok()?;
                        let c = (b'a'..=b'z')
                            .chain(b'0'..=b'9')
                            .find(|c| glob(class, &(*c as char).to_string()))?;
                        out.push(c);
                        i = e;
                    }
                    (Some(c), Some(e)) => {
                        out.push(c);
                        i = e;
                    }
                    _ => out.push(b'['),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    let key = String::from_utf8(out).ok()?;
    glob(pattern, &key).then_some(key)
}

/// The sample keys the DRYRUN sweep tries for one user: one per key
/// pattern the policy allows it (positive controls and the key check),
/// one per pattern Redis really grants it, root permissions and every
/// selector alike (so a right granted only under some other prefix is
/// found), and one outside every policy pattern. At most
/// [`MAX_SAMPLE_KEYS`], without duplicates, in that order.
pub(crate) fn dryrun_sample_keys(policy: &[String], granted: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let add = |k: String, out: &mut Vec<String>| {
        if !out.contains(&k) && out.len() < MAX_SAMPLE_KEYS {
            out.push(k);
        }
    };
    for p in policy.iter().chain(granted) {
        if let Some(k) = sample_key(p) {
            add(k, &mut out);
        }
    }
    let candidates = [
        "epic-audit-dryrun:outside".to_string(),
        "zz-epic-audit-dryrun-outside".to_string(),
        "0:epic-audit-dryrun".to_string(),
    ];
    let outside = candidates
        .iter()
        .find(|k| !policy.iter().any(|p| glob(p, k)));
    if let Some(k) = outside {
        if out.len() == MAX_SAMPLE_KEYS {
            out.pop();
        }
        add(k.clone(), &mut out);
    }
    // At least two keys, so a keyed command (one letter per key) is never
    // mistaken for a keyless one (one letter).
    for k in candidates {
        if out.len() >= 2 {
            break;
        }
        add(k, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_keys_come_from_policy_and_granted_patterns() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // The seed lab: the same two keys as before.
        assert_eq!(
            dryrun_sample_keys(&s(&["session:*"]), &s(&["session:*"])),
            s(&["session:epic-audit-dryrun", "epic-audit-dryrun:outside"])
        );
        // Another namespace, and a grant under a prefix the policy does
        // not allow (a selector): both get a key.
        assert_eq!(
            dryrun_sample_keys(&s(&["sess:*"]), &s(&["sess:*", "other:*"])),
            s(&[
                "sess:epic-audit-dryrun",
                "other:epic-audit-dryrun",
                "epic-audit-dryrun:outside"
            ])
        );
        // Everything allowed: no key is outside, still two keys.
        assert_eq!(dryrun_sample_keys(&s(&["*"]), &[]).len(), 2);
        assert_eq!(
            acl_key_patterns("~a:* %R~b:* %W~c:? allkeys (+get ~d:*)"),
            s(&["a:*", "b:*", "c:?", "*", "d:*"])
        );
        for p in ["a[bc]d*", "x?y", "k[^a-z]*", r"lit\*star", "*"] {
            let k = sample_key(p).unwrap();
            assert!(glob(p, &k), "{p} -> {k}");
        }
    }
}

/// One ACL user as `ACL GETUSER` and `ACL LIST` show it. Password hashes are
/// never recorded: only how many there are and salted fingerprints that are
/// comparable within one run (the salt is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclUser {
    /// User name.
    pub name: String,
    /// Flags: on/off, nopass, sanitize-payload, ...
    pub flags: Vec<String>,
    /// Number of passwords.
    pub password_count: usize,
    /// Salted fingerprints of the password hashes (this run only).
    pub password_fingerprints: Vec<String>,
    /// Command rules as GETUSER prints them.
    pub commands: String,
    /// Key patterns.
    pub keys: String,
    /// Channel patterns.
    pub channels: String,
    /// Selectors, if any.
    pub selectors: Vec<String>,
    /// The user's `ACL LIST` line with hashes replaced by fingerprints.
    pub rule: String,
}

impl AclUser {
    /// True when the user has `flag`.
    pub(crate) fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Every key pattern Redis grants the user: its root permissions and
    /// each selector's ([`acl_key_patterns`]).
    pub(crate) fn key_patterns(&self) -> Vec<String> {
        acl_key_patterns(&self.keys)
            .into_iter()
            .chain(self.selectors.iter().flat_map(|s| acl_key_patterns(s)))
            .collect()
    }
}

/// The last command rule of `rules` (as GETUSER prints them: `-@all
/// +@read +set|get ...`) that decides `cmd`: `Some(rule)` when it ends
/// allowed (the `+` rule that granted it), `None` when denied or never
/// named. Redis applies the rules left to right, the same way.
pub(crate) fn deciding_grant(rules: &str, cmd: &CommandInfo) -> Option<String> {
    let parent = cmd.name.split_once('|').map(|(p, _)| p);
    let mut grant: Option<String> = None;
    for t in rules.split_whitespace() {
        let t = t.trim_matches(|c| c == '(' || c == ')');
        let (allow, what) = match t {
            "allcommands" => (true, "@all"),
            "nocommands" => (false, "@all"),
            _ => match (t.strip_prefix('+'), t.strip_prefix('-')) {
                (Some(w), _) => (true, w),
                (_, Some(w)) => (false, w),
                _ => continue,
            },
        };
        let hits = match what.strip_prefix('@') {
            Some("all") => true,
            Some(cat) => cmd
                .categories
                .iter()
                .any(|c| c.trim_start_matches('@').eq_ignore_ascii_case(cat)),
            None => {
                what.eq_ignore_ascii_case(&cmd.name)
                    || parent.is_some_and(|p| what.eq_ignore_ascii_case(p))
            }
        };
        if hits {
            grant = allow.then(|| t.to_string());
        }
    }
    grant
}

impl AclUser {
    /// What lets the user run `cmd`, as GETUSER prints it: the root rule
    /// (`+@write`, with the root key patterns) or the selector that allows
    /// it (`(+set ~tmp:*)`), for a finding to name what to remove. `None`
    /// when neither allows it.
    pub(crate) fn grant_of(&self, cmd: &CommandInfo) -> Option<String> {
        if let Some(rule) = deciding_grant(&self.commands, cmd) {
            let keys = self.keys.trim();
            return Some(if keys.is_empty() {
                format!("`{rule}` (no key pattern)")
            } else {
                format!("`{rule}` with keys `{keys}`")
            });
        }
        self.selectors
            .iter()
            .find(|s| deciding_grant(s, cmd).is_some())
            .map(|s| format!("the selector `{}`", selector_text(s)))
    }
}

/// A selector as ACL LIST writes it, `(-@all +set ~tmp:*)`, from its
/// recorded form (which may carry empty fields).
pub(crate) fn selector_text(s: &str) -> String {
    let inner = s.trim().trim_start_matches('(').trim_end_matches(')');
    format!(
        "({})",
        inner.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

/// Counts of ACL LOG entries; never the objects (a denied key may be a
/// session id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclLogSummary {
    /// Entries returned (ACL LOG keeps the newest `acllog-max-len`).
    pub entries: usize,
    /// Summed `count` by reason and user.
    pub by_reason_user: Vec<AclLogCount>,
}

/// One bucket of the ACL LOG summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclLogCount {
    /// `auth`, `command`, `key` or `channel`.
    pub reason: String,
    /// The user the entry names.
    pub username: String,
    /// Sum of the entries' `count`.
    pub count: u64,
    /// Age of the newest of these entries, in seconds.
    pub newest_age_seconds: u64,
}

/// A DRYRUN reply that decided nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunError {
    /// User.
    pub user: String,
    /// Command (`parent|sub` for subcommands).
    pub command: String,
    /// The reply.
    pub reply: String,
}

/// A policy case and what DRYRUN said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    /// User.
    pub user: String,
    /// The command line as given in the policy.
    pub command: String,
    /// What DRYRUN decided (recorded as the sweep's letter).
    pub verdict: DryRunVerdict,
    /// DRYRUN's reply.
    pub reply: String,
}

/// Live authentication on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthObservation {
    /// Reply to PING on a connection that never authenticated.
    pub unauthenticated_ping: String,
    /// Reply to `AUTH default <random>` (adds an `auth` entry to ACL LOG).
    pub default_wrong_password: String,
    /// Each configured user: did AUTH succeed, and what ACL WHOAMI said.
    pub users: Vec<UserAuth>,
}

/// One configured user's live login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAuth {
    /// The user.
    pub user: String,
    /// AUTH succeeded.
    pub authenticated: bool,
    /// AUTH's error, if any.
    pub error: Option<String>,
    /// ACL WHOAMI after AUTH (or CLIENT INFO's `user=`).
    pub whoami: Option<String>,
    /// Why neither ACL WHOAMI nor CLIENT INFO answered (e.g. NOPERM: a
    /// least-privilege user need not have them). The login is still
    /// proven by AUTH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whoami_error: Option<String>,
}

/// The COMMAND table: what each command is (flags, ACL categories).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandTable {
    /// Node it was read from.
    pub node: String,
    /// Commands, subcommands as `parent|sub`.
    pub commands: Vec<CommandInfo>,
}

/// One command of the COMMAND table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInfo {
    /// Lower-case name, `parent|sub` for subcommands.
    pub name: String,
    /// Arity (negative: at least).
    pub arity: i64,
    /// Flags (write, readonly, admin, ...).
    pub flags: Vec<String>,
    /// ACL categories (`@read`, ...).
    pub categories: Vec<String>,
    /// First key position (0: none or movable).
    pub first_key: i64,
    /// Last key position (negative: from the end).
    pub last_key: i64,
    /// Step between keys.
    pub step: i64,
    /// Has subcommands (the sweep tests those instead).
    pub container: bool,
}

/// One explicit DRYRUN case from the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunCase {
    /// The user.
    pub user: String,
    /// The command line, words separated by spaces.
    pub command: String,
    /// `allow` or `deny` (judged by the check, not the probe).
    pub expect: Expect,
}

/// What a policy case expects of DRYRUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The command must be allowed.
    Allow,
    /// The command must be denied.
    Deny,
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
        })
    }
}

/// One ACL DRYRUN verdict. The sweep matrix ([`AclView::dryrun`]) packs
/// these as their letters, one per sample key; a policy case records one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DryRunVerdict {
    /// `A`: allowed (DRYRUN answered OK).
    #[serde(rename = "A")]
    Allowed,
    /// `C`: the command is denied.
    #[serde(rename = "C")]
    CommandDenied,
    /// `K`: a key is denied.
    #[serde(rename = "K")]
    KeyDenied,
    /// `H`: a channel is denied.
    #[serde(rename = "H")]
    ChannelDenied,
    /// `E`: neither OK nor a permission denial (see the reply).
    #[serde(rename = "E")]
    Error,
}

impl DryRunVerdict {
    /// Its letter in the sweep matrix.
    pub(crate) fn letter(self) -> char {
        match self {
            DryRunVerdict::Allowed => 'A',
            DryRunVerdict::CommandDenied => 'C',
            DryRunVerdict::KeyDenied => 'K',
            DryRunVerdict::ChannelDenied => 'H',
            DryRunVerdict::Error => 'E',
        }
    }

    /// The verdict a matrix letter stands for (`None` for another byte).
    pub(crate) fn from_letter(c: char) -> Option<DryRunVerdict> {
        Some(match c {
            'A' => DryRunVerdict::Allowed,
            'C' => DryRunVerdict::CommandDenied,
            'K' => DryRunVerdict::KeyDenied,
            'H' => DryRunVerdict::ChannelDenied,
            'E' => DryRunVerdict::Error,
            _ => return None,
        })
    }
}

/// One command's DRYRUN verdicts in the sweep matrix: one per sample key
/// tried, or one for a command without keys. Written in evidence.json as
/// their letters (`"AK"`), as it always was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DryRunLetters(Vec<DryRunVerdict>);

impl DryRunLetters {
    /// The verdicts, in sample-key order.
    pub fn verdicts(&self) -> &[DryRunVerdict] {
        &self.0
    }

    /// Appends the next sample key's verdict.
    pub(crate) fn push(&mut self, v: DryRunVerdict) {
        self.0.push(v);
    }

    /// Reads letters (`"AK"`); `None` if one is not a DRYRUN letter.
    pub fn parse(letters: &str) -> Option<DryRunLetters> {
        letters
            .chars()
            .map(DryRunVerdict::from_letter)
            .collect::<Option<Vec<_>>>()
            .map(DryRunLetters)
    }
}

impl Serialize for DryRunLetters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.iter().map(|v| v.letter()).collect::<String>())
    }
}

impl<'de> Deserialize<'de> for DryRunLetters {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DryRunLetters::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a string of DRYRUN letters (A, C, K, H, E)"
            ))
        })
    }
}

#[cfg(test)]
mod grant_tests {
    use super::*;

    fn cmd(name: &str, cats: &[&str]) -> CommandInfo {
        CommandInfo {
            name: name.into(),
            arity: -3,
            flags: Vec::new(),
            categories: cats.iter().map(|c| c.to_string()).collect(),
            first_key: 1,
            last_key: 1,
            step: 1,
            container: false,
        }
    }

    fn user(commands: &str, keys: &str, selectors: &[&str]) -> AclUser {
        AclUser {
            name: "dev_user".into(),
            flags: vec!["on".into()],
            password_count: 1,
            password_fingerprints: Vec::new(),
            commands: commands.into(),
            keys: keys.into(),
            channels: String::new(),
            selectors: selectors.iter().map(|s| s.to_string()).collect(),
            rule: String::new(),
        }
    }

    #[test]
    fn the_rule_or_selector_that_grants_a_command_is_named() {
        let set = cmd("set", &["@write", "@string", "@slow"]);
        let get = cmd("get", &["@read", "@string", "@fast"]);
        let cfg = cmd("config|set", &["@admin", "@slow", "@dangerous"]);
        // Left to right, the last rule that names the command decides.
        assert_eq!(
            deciding_grant("-@all +@read", &get).as_deref(),
            Some("+@read")
        );
        assert_eq!(deciding_grant("-@all +@read", &set), None);
        assert_eq!(deciding_grant("+@all -@write", &set), None);
        assert_eq!(deciding_grant("-@all +@write -set", &set), None);
        assert_eq!(deciding_grant("-@all +set", &set).as_deref(), Some("+set"));
        assert_eq!(
            deciding_grant("allcommands", &cfg).as_deref(),
            Some("allcommands")
        );
        assert_eq!(
            deciding_grant("-@all +config", &cfg).as_deref(),
            Some("+config")
        );
        assert_eq!(deciding_grant("-@all +config|get", &cfg), None);
        // A Redis 7 selector grants a write the root denies: it is named.
        let u = user("-@all +@read", "~*", &["(-@all +set ~tmp:* )"]);
        assert_eq!(
            u.grant_of(&set).as_deref(),
            Some("the selector `(-@all +set ~tmp:*)`")
        );
        assert_eq!(u.grant_of(&get).as_deref(), Some("`+@read` with keys `~*`"));
        let u = user("-@all +@read +@write", "~*", &[]);
        assert_eq!(
            u.grant_of(&set).as_deref(),
            Some("`+@write` with keys `~*`")
        );
        assert_eq!(user("-@all +@read", "~*", &[]).grant_of(&set), None);
    }
}
