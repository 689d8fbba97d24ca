//! The AWS plumbing every AWS caller shares: the SDK configuration of an
//! environment (region, profile, endpoint, credentials, deadlines and
//! retries), the reading of an SDK error as a [`ProbeFailure`] naming the
//! call, and running an SDK future from synchronous code. The AWS probe,
//! the KMS evidence signer and the lab's emulator seeding all sit on top of
//! this module; it imports only `config` and `evidence`.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

use crate::config::{AwsCredentials, AwsSettings, Timeouts};
use crate::evidence::{FailureKind, ProbeFailure};

/// The SDK configuration for an environment: region, profile, endpoint,
/// credentials, timeouts and retries. Shared with the lab's seeding code.
pub async fn sdk_config(s: &AwsSettings, t: &Timeouts) -> aws_config::SdkConfig {
    sdk_config_for(
        s.region.as_deref(),
        s.profile.as_deref(),
        s.endpoint.as_deref(),
        s.credentials,
        t,
    )
    .await
}

/// [`sdk_config`] from its parts, for callers without a whole `[aws]`
/// table (the KMS evidence signer): `None` leaves a part to the standard
/// chain (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, ...).
pub(crate) async fn sdk_config_for(
    region: Option<&str>,
    profile: Option<&str>,
    endpoint: Option<&str>,
    credentials: AwsCredentials,
    t: &Timeouts,
) -> aws_config::SdkConfig {
    // Three attempts with jittered exponential backoff from 250 ms (at most
    // 250 + 500 ms in all). The operation timeout leaves room for every
    // attempt plus that backoff, so an endpoint that refuses connections is
    // reported as such (`connect`) and only a silent one as `timeout`.
    let backoff = Duration::from_millis(250);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(t.connect())
                .operation_attempt_timeout(t.command())
                .operation_timeout(
                    t.command() * 3 + t.connect() + backoff * 3 + Duration::from_secs(1),
                )
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(backoff)
                .with_max_backoff(Duration::from_secs(2)),
        );
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    if credentials == AwsCredentials::Emulator {
        loader = loader.credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "epic-audit-emulator",
        ));
    }
    loader.load().await
}

/// An error and its causes in one line (`dispatch failure: io error: ...:
/// Connection refused`), each message once, without the SDK's debug dump
/// of the whole chain (which `DisplayErrorContext` appends) or Rust's
/// `(os error N)` tails.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = crate::output::without_os_error(err.to_string());
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// An SDK error as a failure naming the call. Never contains credentials:
/// the SDK's messages carry codes, messages and the endpoint only.
pub fn api_failure<E, R>(call: &str, e: &SdkError<E, R>) -> ProbeFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let (kind, detail) = match e {
        SdkError::TimeoutError(_) => (
            FailureKind::Timeout,
            "no answer within the timeout".to_string(),
        ),
        SdkError::DispatchFailure(d) if d.is_timeout() => (
            FailureKind::Timeout,
            format!(
                "no answer within the timeout ({})",
                crate::aws::error_chain(e)
            ),
        ),
        SdkError::DispatchFailure(d) if d.is_io() => (
            FailureKind::Connect,
            format!("cannot reach the endpoint ({})", crate::aws::error_chain(e)),
        ),
        SdkError::DispatchFailure(_) => (FailureKind::Connect, crate::aws::error_chain(e)),
        SdkError::ServiceError(_) => {
            let code = e.code().unwrap_or("unknown");
            let kind = if code.contains("Throttl") || code == "RequestLimitExceeded" {
                FailureKind::Throttled
            } else if code.contains("AccessDenied") || code.contains("UnauthorizedOperation") {
                FailureKind::Denied
            } else {
                FailureKind::ApiError
            };
            (
                kind,
                format!("{code}: {}", e.message().unwrap_or("(no message)")),
            )
        }
        _ => (FailureKind::ApiError, crate::aws::error_chain(e)),
    };
    ProbeFailure {
        kind,
        message: format!("{call} failed: {detail}"),
    }
}

/// Runs `fut` to completion from synchronous code inside the (multi-thread)
/// runtime, or on a small runtime of its own outside one.
pub(crate) fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => tokio::task::block_in_place(|| h.block_on(fut)),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime starts")
            .block_on(fut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_denied_calls_become_failures_naming_the_call() {
        use aws_sdk_ec2::config::http::HttpResponse;
        use aws_sdk_ec2::error::ErrorMetadata;
        use aws_sdk_ec2::operation::describe_instances::DescribeInstancesError;
        let err = |code: &str, status: u16| {
            SdkError::service_error(
                DescribeInstancesError::generic(
                    ErrorMetadata::builder()
                        .code(code)
                        .message("details from AWS")
                        .build(),
                ),
                HttpResponse::new(
                    status.try_into().unwrap(),
                    aws_smithy_types::body::SdkBody::empty(),
                ),
            )
        };
        let f = api_failure("ec2:DescribeInstances", &err("RequestLimitExceeded", 503));
        assert_eq!(f.kind, "throttled");
        assert_eq!(
            f.message,
            "ec2:DescribeInstances failed: RequestLimitExceeded: details from AWS"
        );
        let f = api_failure("ec2:DescribeInstances", &err("ThrottlingException", 400));
        assert_eq!(f.kind, "throttled");
        let f = api_failure("ec2:DescribeInstances", &err("UnauthorizedOperation", 403));
        assert_eq!(f.kind, "denied");
        assert!(f.message.contains("UnauthorizedOperation"));
    }
}
