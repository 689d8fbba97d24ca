//! The HIPAA Security Rule provisions a check may cite, how strongly it
//! cites them, and what one run can honestly conclude about each.
//!
//! A citation is `primary` when the check tests something the provision's
//! own words require, and `supporting` when it tests a precondition, a
//! narrow slice, or an organisational hardening choice beyond the rule
//! (docs/hipaa.md says how the citations were reviewed). Only primary checks decide a
//! provision's status, and no run concludes more than this:
//!
//! - a technical safeguard (164.312) is `satisfied` only when at least one
//!   primary check passed and none failed, errored, was not audited or was
//!   waived, and then only for what those checks tested (partial coverage);
//! - an administrative safeguard (164.308) is about policies and procedures
//!   no scan can establish: it is never `satisfied`, only `not satisfied`
//!   when a primary check shows the technical state contradicts it, else
//!   "manual assessment required";
//! - a provision cited only by supporting checks is "manual assessment
//!   required" too, whatever they found (their findings are listed).
//!
//! Every report (Markdown, HTML, OSCAL, the quarterly export) shows these
//! same statuses in the same words ([`Status::label`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a check bears on a provision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// It tests what the provision's words require (it decides the status).
    Primary,
    /// Related evidence only (never decides the status).
    Supporting,
}

impl Relation {
    /// `primary` or `supporting`.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Primary => "primary",
            Relation::Supporting => "supporting",
        }
    }
}

/// One HIPAA citation of a check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "CitationInput")]
pub struct Citation {
    /// The 45 CFR reference, e.g. `164.312(e)(1)`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Primary or supporting.
    pub relation: Relation,
}

/// A citation as policies and older reports write it: a bare reference
/// (read as primary, the meaning it had before relations existed) or a
/// table with `ref` and `relation`.
#[derive(Deserialize)]
#[serde(untagged)]
enum CitationInput {
    Bare(String),
    Full {
        #[serde(rename = "ref")]
        reference: String,
        relation: Relation,
    },
}

impl From<CitationInput> for Citation {
    fn from(c: CitationInput) -> Citation {
        match c {
            CitationInput::Bare(reference) => Citation {
                reference,
                relation: Relation::Primary,
            },
            CitationInput::Full {
                reference,
                relation,
            } => Citation {
                reference,
                relation,
            },
        }
    }
}

impl fmt::Display for Citation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.relation {
            Relation::Primary => write!(f, "{}", self.reference),
            Relation::Supporting => write!(f, "{} (supporting)", self.reference),
        }
    }
}

/// `164.312(e)(1), 164.308(a)(1)(ii)(B) (supporting)`, or the words for
/// none.
pub fn list(cs: &[Citation]) -> String {
    if cs.is_empty() {
        return NO_CITATION.to_string();
    }
    cs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a check without citations is.
pub(crate) const NO_CITATION: &str = "none (service objective or hygiene, not a HIPAA safeguard)";

/// Administrative (164.308) or technical (164.312) safeguard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Safeguard {
    /// 164.308: policies and procedures.
    Administrative,
    /// 164.312: technical policies and procedures.
    Technical,
}

/// Standard, or a Required/Addressable implementation specification
/// (Appendix A to Subpart C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Specification {
    /// A standard with implementation specifications of its own.
    Standard,
    /// Required.
    Required,
    /// Addressable: implemented if reasonable and appropriate, else a
    /// documented equivalent (164.306(d)(3)).
    Addressable,
}

/// One provision of the Security Rule.
#[derive(Debug, Clone, Copy)]
pub struct Provision {
    /// `164.312(e)(1)`.
    pub reference: &'static str,
    /// Its heading.
    pub title: &'static str,
    /// Standard, Required or Addressable.
    pub specification: Specification,
    /// The rule's words (abridged).
    pub words: &'static str,
}

impl Provision {
    /// Administrative for 164.308, technical for 164.312.
    pub(crate) fn safeguard(&self) -> Safeguard {
        if self.reference.starts_with("164.308") {
            Safeguard::Administrative
        } else {
            Safeguard::Technical
        }
    }
}

/// The provisions a policy may cite (45 CFR 164.308 and 164.312, with
/// Appendix A's R/A). Policy files citing anything else are refused, so a
/// typo cannot invent a safeguard.
pub(crate) const PROVISIONS: &[Provision] = &[
    p("164.308(a)(1)(ii)(A)", "Risk analysis", Specification::Required, "Conduct an accurate and thorough assessment of the potential risks and vulnerabilities to the confidentiality, integrity, and availability of ePHI"),
    p("164.308(a)(1)(ii)(B)", "Risk management", Specification::Required, "Implement security measures sufficient to reduce risks and vulnerabilities to a reasonable and appropriate level"),
    p("164.308(a)(1)(ii)(D)", "Information system activity review", Specification::Required, "Implement procedures to regularly review records of information system activity, such as audit logs, access reports, and security incident tracking reports"),
    p("164.308(a)(4)(ii)(B)", "Access authorization", Specification::Addressable, "Implement policies and procedures for granting access to ePHI"),
    p("164.308(a)(4)(ii)(C)", "Access establishment and modification", Specification::Addressable, "Establish, document, review, and modify a user's right of access"),
    p("164.308(a)(5)(ii)(C)", "Log-in monitoring", Specification::Addressable, "Procedures for monitoring log-in attempts and reporting discrepancies"),
    p("164.308(a)(5)(ii)(D)", "Password management", Specification::Addressable, "Procedures for creating, changing, and safeguarding passwords"),
    p("164.308(a)(6)(ii)", "Response and reporting", Specification::Required, "Identify and respond to suspected or known security incidents; mitigate, to the extent practicable, harmful effects of security incidents that are known to the covered entity or business associate; and document security incidents and their outcomes"),
    p("164.308(a)(7)(i)", "Contingency plan", Specification::Standard, "Establish (and implement as needed) policies and procedures for responding to an emergency or other occurrence that damages systems that contain ePHI"),
    p("164.308(a)(7)(ii)(A)", "Data backup plan", Specification::Required, "Establish and implement procedures to create and maintain retrievable exact copies of ePHI"),
    p("164.308(a)(7)(ii)(B)", "Disaster recovery plan", Specification::Required, "Establish (and implement as needed) procedures to restore any loss of data"),
    p("164.308(a)(7)(ii)(C)", "Emergency mode operation plan", Specification::Required, "Procedures to enable continuation of critical business processes for protection of the security of ePHI while operating in emergency mode"),
    p("164.308(a)(7)(ii)(D)", "Testing and revision procedures", Specification::Addressable, "Implement procedures for periodic testing and revision of contingency plans"),
    p("164.308(a)(7)(ii)(E)", "Applications and data criticality analysis", Specification::Addressable, "Assess the relative criticality of specific applications and data in support of other contingency plan components"),
    p("164.312(a)(1)", "Access control", Specification::Standard, "Allow access only to those persons or software programs that have been granted access rights as specified in 164.308(a)(4)"),
    p("164.312(a)(2)(i)", "Unique user identification", Specification::Required, "Assign a unique name and/or number for identifying and tracking user identity"),
    p("164.312(a)(2)(ii)", "Emergency access procedure", Specification::Required, "Establish (and implement as needed) procedures for obtaining necessary ePHI during an emergency"),
    p("164.312(a)(2)(iii)", "Automatic logoff", Specification::Addressable, "Implement electronic procedures that terminate an electronic session after a predetermined time of inactivity"),
    p("164.312(a)(2)(iv)", "Encryption and decryption", Specification::Addressable, "Implement a mechanism to encrypt and decrypt ePHI"),
    p("164.312(b)", "Audit controls", Specification::Required, "Implement hardware, software, and/or procedural mechanisms that record and examine activity in information systems that contain or use ePHI"),
    p("164.312(c)(1)", "Integrity", Specification::Standard, "Implement policies and procedures to protect ePHI from improper alteration or destruction"),
    p("164.312(c)(2)", "Mechanism to authenticate ePHI", Specification::Addressable, "Implement electronic mechanisms to corroborate that ePHI has not been altered or destroyed in an unauthorized manner"),
    p("164.312(d)", "Person or entity authentication", Specification::Required, "Implement procedures to verify that a person or entity seeking access to ePHI is the one claimed"),
    p("164.312(e)(1)", "Transmission security", Specification::Standard, "Implement technical security measures to guard against unauthorized access to ePHI that is being transmitted over an electronic communications network"),
    p("164.312(e)(2)(i)", "Integrity controls", Specification::Addressable, "Implement security measures to ensure that electronically transmitted ePHI is not improperly modified without detection until disposed of"),
    p("164.312(e)(2)(ii)", "Encryption", Specification::Addressable, "Implement a mechanism to encrypt ePHI whenever deemed appropriate"),
];

const fn p(
    reference: &'static str,
    title: &'static str,
    specification: Specification,
    words: &'static str,
) -> Provision {
    Provision {
        reference,
        title,
        specification,
        words,
    }
}

/// The provision `reference` names, if the policy may cite it.
pub(crate) fn provision(reference: &str) -> Option<&'static Provision> {
    PROVISIONS.iter().find(|p| p.reference == reference)
}

/// What remains for a person to assess, in every report.
pub(crate) fn manual_remainder(p: &Provision) -> String {
    format!(
        "The policies, procedures, documentation, workforce activities and systems outside this Redis Cluster \
         that 45 CFR {} also requires are not assessed by this tool{}.",
        p.reference,
        if p.specification == Specification::Addressable {
            "; as an addressable specification it may also be met by a documented equivalent measure (164.306(d)(3))"
        } else {
            ""
        }
    )
}

/// What one run concludes about one provision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Technical only: a primary check passed, none failed, errored, was
    /// not audited or was waived. For what was tested, partially.
    Satisfied,
    /// A primary check failed (or its failure was waived).
    NotSatisfied,
    /// No primary check could decide (skipped, errored, not audited, or
    /// only warned).
    NotAssessed,
    /// Administrative, or cited only by supporting checks: no scan can
    /// conclude; a person must.
    ManualAssessment,
}

impl Status {
    /// The words every report uses.
    pub fn label(self) -> &'static str {
        match self {
            Status::Satisfied => "satisfied (automated, partial)",
            Status::NotSatisfied => "not satisfied",
            Status::NotAssessed => "not assessed",
            Status::ManualAssessment => "manual assessment required",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_read_bare_or_with_a_relation() {
        #[derive(Deserialize)]
        struct T {
            hipaa: Vec<Citation>,
        }
        let t: T = toml::from_str(
            r#"hipaa = ["164.312(b)", { ref = "164.312(d)", relation = "supporting" }]"#,
        )
        .unwrap();
        assert_eq!(t.hipaa[0].relation, Relation::Primary);
        assert_eq!(t.hipaa[1].relation, Relation::Supporting);
        assert_eq!(list(&t.hipaa), "164.312(b), 164.312(d) (supporting)");
        assert!(
            toml::from_str::<T>(r#"hipaa = [{ ref = "164.312(d)", relation = "main" }]"#).is_err()
        );
        // Written as a table, read back the same.
        let json = serde_json::to_string(&t.hipaa[1]).unwrap();
        assert_eq!(json, r#"{"ref":"164.312(d)","relation":"supporting"}"#);
        assert_eq!(serde_json::from_str::<Citation>(&json).unwrap(), t.hipaa[1]);
    }

    #[test]
    fn provisions_are_unique_and_classified() {
        let mut refs: Vec<&str> = PROVISIONS.iter().map(|p| p.reference).collect();
        refs.sort();
        refs.dedup();
        assert_eq!(refs.len(), PROVISIONS.len());
        assert_eq!(
            provision("164.308(a)(7)(i)").unwrap().safeguard(),
            Safeguard::Administrative
        );
        assert_eq!(
            provision("164.312(a)(2)(iii)").unwrap().specification,
            Specification::Addressable
        );
        assert!(provision("164.312(e)(3)").is_none());
    }
}
