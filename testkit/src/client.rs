//! HTTP calls against a node, answering with the status and body instead of
//! treating non-2xx answers as errors: tests assert on 400s and 429s as much as on
//! 200s.

use crate::TestkitError;
use serde_json::Value;
use std::time::Duration;

/// Response status and JSON body (`Null` when the body is not JSON).
pub type Reply = (u16, Value);

/// An HTTP client with one timeout for every call.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    no_redirects: ureq::Agent,
}

fn agent(timeout: Duration, max_redirects: u32) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(max_redirects)
        .build()
        .into()
}

fn read(
    url: &str,
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, String), TestkitError> {
    let mut r = r.map_err(|e| TestkitError::Http {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    let status = r.status().as_u16();
    Ok((status, r.body_mut().read_to_string().unwrap_or_default()))
}

/// Parses a body as JSON, `Null` when it is not.
pub fn json_or_null(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl Client {
    /// A client whose calls each give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            agent: agent(timeout, 5),
            no_redirects: agent(timeout, 0),
        }
    }

    /// GET, as text.
    pub fn get(&self, url: &str) -> Result<(u16, String), TestkitError> {
        read(url, self.agent.get(url).call())
    }

    /// GET, as JSON.
    pub fn get_json(&self, url: &str) -> Result<Reply, TestkitError> {
        self.get(url).map(|(s, t)| (s, json_or_null(&t)))
    }

    /// GET without following redirects: the status and the `Location` header (the
    /// body when there is none).
    pub fn get_location(&self, url: &str) -> Result<(u16, String), TestkitError> {
        let mut r = self
            .no_redirects
            .get(url)
            .call()
            .map_err(|e| TestkitError::Http {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = r.status().as_u16();
        Ok((
            status,
            location.unwrap_or_else(|| r.body_mut().read_to_string().unwrap_or_default()),
        ))
    }

    /// POST of a JSON body, as text.
    pub fn post(&self, url: &str, body: &[u8]) -> Result<(u16, String), TestkitError> {
        read(
            url,
            self.agent
                .post(url)
                .header("Content-Type", "application/json")
                .send(body),
        )
    }

    /// A request with any method, body and extra headers, as text: what a
    /// Kubernetes client sends (PATCH with a patch type, DELETE with options).
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<(u16, String), TestkitError> {
        let uri: ureq::http::Uri = url.parse().map_err(|e| TestkitError::Http {
            url: url.to_string(),
            message: format!("{e}"),
        })?;
        let mut req = ureq::http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.unwrap_or_default().to_vec())
            .map_err(|e| TestkitError::Http {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        read(url, self.agent.run(req))
    }

    /// POST of a JSON body, as JSON.
    pub fn post_json(&self, url: &str, body: &[u8]) -> Result<Reply, TestkitError> {
        self.post(url, body).map(|(s, t)| (s, json_or_null(&t)))
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
