//! Reason codes: why a subject got its outcome, as data.
//!
//! Every [`SubjectFinding`](super::SubjectFinding) carries a [`Reason`]: one
//! variant of its area's enum (declared with [`reasons!`] at the top of the
//! area's file, e.g. `access::Why`) or of [`Common`] (what every rule
//! shares: an unobserved subject, missing evidence). `checks::reasons()`
//! lists them all. A reason has a stable
//! slug; the engine writes it after the check id as the finding's `code`
//! (`ACC-005/denied-command-allowed`) in report.json, SARIF and JUnit.
//! Tests compare reasons, not prose, so a message can be reworded freely.
//!
//! Slugs are part of the report's contract: never reuse one for a
//! different meaning, never rename one (add a new variant instead).

/// Declares an area's reason enum: each variant with its slug. Generates
/// `ALL`, `slug()` and the conversion into [`Reason`].
macro_rules! reasons {
    ($(#[$m:meta])* $area:ident => $name:ident { $($(#[$vm:meta])* $v:ident = $slug:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)* }
        impl $name {
            /// Every reason of the area, in declaration order.
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            /// The stable slug written after the check id.
            pub fn slug(self) -> &'static str {
                match self { $($name::$v => $slug,)* }
            }
        }
        impl From<$name> for $crate::checks::reason::Reason {
            fn from(r: $name) -> Self {
                $crate::checks::reason::Reason::new(stringify!($area), r.slug())
            }
        }
    };
}
pub(crate) use reasons;

reasons! {
    /// Reasons every rule shares.
    Common => Common {
        /// The probe could not observe the subject (the failure says why).
        Unobserved = "unobserved",
        /// The run recorded no evidence the rule can judge.
        NoEvidence = "no-evidence",
        /// Discovery listed a subject the evidence holds nothing about.
        MissingSubject = "missing-subject",
        /// The check's `[check.params]` do not fit its rule.
        InvalidParams = "invalid-params",
        /// The policy names a rule this version does not have.
        UnknownRule = "unknown-rule",
        /// `enabled = false` in the policy.
        Disabled = "disabled",
        /// The environment has no `[aws]` table: not audited.
        AwsNotConfigured = "aws-not-configured",
        /// The environment lacks what the check needs (not AWS).
        NotConfigured = "not-configured",
    }
}

/// Why a subject got its outcome: one variant of an area's enum, kept as
/// the area's name and the variant's slug (so this file needs no area).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason {
    area: &'static str,
    slug: &'static str,
}

impl Reason {
    /// The reason `slug` of `area` (what the `reasons!` conversions build).
    pub(crate) const fn new(area: &'static str, slug: &'static str) -> Reason {
        Reason { area, slug }
    }

    /// The stable slug (`denied-command-allowed`).
    pub fn slug(self) -> &'static str {
        self.slug
    }

    /// The area whose enum it comes from (`Access`, or `Common`).
    pub fn area(self) -> &'static str {
        self.area
    }

    /// The finding's code under check `id`: `ACC-005/denied-command-allowed`.
    pub fn code(self, id: &str) -> String {
        format!("{id}/{}", self.slug)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs_are_lower_kebab_and_unique_within_an_area_and_apart_from_the_common_ones() {
        let all = crate::checks::reasons();
        let common: Vec<&str> = super::Common::ALL.iter().map(|r| r.slug()).collect();
        let mut seen = std::collections::BTreeSet::new();
        for r in &all {
            let s = r.slug();
            assert!(
                !s.is_empty()
                    && s.len() <= 40
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !s.starts_with('-')
                    && !s.ends_with('-'),
                "{s}"
            );
            assert!(seen.insert((r.area(), s)), "{} has {s} twice", r.area());
            assert!(
                r.area() == "Common" || !common.contains(&s),
                "{s} is a common reason"
            );
        }
    }
}
