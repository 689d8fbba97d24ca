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
    /// tried ([`DRYRUN_KEYS`]) or one letter for commands without keys:
    /// `A` allowed, `C` command denied, `K` key denied, `H` channel denied,
    /// `E` error (see `dryrun_errors`).
    pub dryrun: BTreeMap<String, BTreeMap<String, String>>,
    /// DRYRUN replies that were neither OK nor a permission denial.
    pub dryrun_errors: Vec<DryRunError>,
    /// Number of ACL DRYRUN calls made on this node.
    pub dryrun_calls: usize,
    /// The policy's explicit cases.
    pub cases: Vec<CaseResult>,
    /// Live authentication attempts.
    pub auth: AuthObservation,
}

/// The sample keys the DRYRUN sweep tries for commands that take keys: one
/// in the session namespace, one outside every pattern of the seed policy.
pub const DRYRUN_KEYS: [&str; 2] = ["session:epic-audit-dryrun", "epic-audit-dryrun:outside"];

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
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
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
    /// `A`, `C`, `K`, `H` or `E` (as in the sweep).
    pub verdict: String,
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
    pub expect: String,
}
