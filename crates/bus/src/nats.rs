//! [`Bus`] over a NATS connection (async-nats).

use std::time::Duration;

use async_nats::header::HeaderMap;
use async_nats::{Client, ConnectOptions, RequestErrorKind};
use bytes::Bytes;
use phirepass_pki::{Identity, ServiceKind};
use tracing::{debug, info, warn};

use crate::subject::{check_headers, check_pattern, check_subject};
use crate::{Bus, BusError, Headers, Message, SubInner, Subscription};

/// How long [`Bus::flush`] waits for the server's round trip.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// A NATS connection; cheap to clone (clones share the connection).
#[derive(Clone, Debug)]
pub struct NatsBus {
    client: Client,
    /// Where this connection's replies arrive (and where the flush probe goes).
    inbox: String,
}

impl NatsBus {
    /// Connects once, anonymously and as the server allows (plaintext for a `nats://` URL):
    /// the development fallback and tests against an open server. Fails at once if the
    /// server is unreachable (the client reconnects by itself after a successful first
    /// connection).
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::open(ConnectOptions::new().name("phirepass"), url, "_INBOX").await
    }

    /// Connects as a service of `kind`: replies arrive under the kind's own inbox
    /// ([`crate::inbox_prefix`]), which the server lets only that kind read. With an
    /// identity, TLS is required (even for a `nats://` URL), the server must present a
    /// `nats` certificate from the trust bundle, and the client presents its own, which the
    /// server maps to the kind's user. Without one the connection is anonymous, which only
    /// a development server accepts.
    pub async fn connect_as(
        url: &str,
        kind: ServiceKind,
        identity: Option<&Identity>,
    ) -> Result<Self, BusError> {
        let inbox = crate::permissions::inbox_prefix(kind);
        let mut options = ConnectOptions::new()
            .name(format!("phirepass-{}", kind.name()))
            .custom_inbox_prefix(&inbox);
        match identity {
            Some(identity) => {
                if identity.kind() != kind {
                    return Err(BusError::Other(format!(
                        "the identity is {}'s, not {kind}'s",
                        identity.kind()
                    )));
                }
                let tls = identity
                    .client_config(Some(ServiceKind::Nats))
                    .map_err(|e| other("nats tls configuration", e))?;
                options = options.require_tls(true).tls_client_config(tls);
            }
            None => warn!(
                %kind,
                "connecting to nats without an identity: no tls, no user (development only)"
            ),
        }
        Self::open(options, url, &inbox).await
    }

    async fn open(options: ConnectOptions, url: &str, inbox: &str) -> Result<Self, BusError> {
        let client = options
            .connect(url)
            .await
            .map_err(|e| BusError::Other(format!("connecting to nats: {e}")))?;
        info!(url, "connected to nats");
        Ok(Self {
            client,
            inbox: inbox.to_owned(),
        })
    }

    /// The underlying client, for JetStream and other NATS-only features.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn to_header_map(headers: &Headers) -> Option<HeaderMap> {
    if headers.is_empty() {
        return None;
    }
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(name.as_str(), value.as_str());
    }
    Some(map)
}

pub(crate) fn from_nats(msg: async_nats::Message) -> Message {
    let mut headers = Vec::new();
    if let Some(map) = &msg.headers {
        for (name, values) in map.iter() {
            for value in values {
                headers.push((name.to_string(), value.as_str().to_owned()));
            }
        }
    }
    Message {
        subject: msg.subject.as_str().to_owned(),
        reply: msg.reply.map(|r| r.as_str().to_owned()),
        headers,
        payload: msg.payload,
    }
}

fn other(context: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Other(format!("{context}: {e}"))
}

#[async_trait::async_trait]
impl Bus for NatsBus {
    async fn publish(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
    ) -> Result<(), BusError> {
        check_subject(subject)?;
        check_headers(&headers)?;
        let subject = subject.to_owned();
        let res = match to_header_map(&headers) {
            Some(map) => {
                self.client
                    .publish_with_headers(subject, map, payload)
                    .await
            }
            None => self.client.publish(subject, payload).await,
        };
        // The only publish failure is the client's command channel being gone.
        res.map_err(|e| {
            debug!(error = %e, "nats publish failed");
            BusError::Closed
        })
    }

    async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        check_pattern(subject)?;
        let sub = self
            .client
            .subscribe(subject.to_owned())
            .await
            .map_err(|e| other("nats subscribe", e))?;
        Ok(Subscription {
            inner: SubInner::Nats(sub),
        })
    }

    async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        check_subject(subject)?;
        check_headers(&headers)?;
        let mut req = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(timeout));
        if let Some(map) = to_header_map(&headers) {
            req = req.headers(map);
        }
        match self.client.send_request(subject.to_owned(), req).await {
            Ok(msg) => Ok(from_nats(msg)),
            Err(e) => match e.kind() {
                RequestErrorKind::NoResponders => Err(BusError::NoResponders),
                RequestErrorKind::TimedOut => Err(BusError::Timeout),
                RequestErrorKind::Other => Err(other("nats request", e)),
            },
        }
    }

    async fn flush(&self) -> Result<(), BusError> {
        self.client
            .flush()
            .await
            .map_err(|e| other("nats flush", e))?;
        // async-nats' flush only empties the socket buffer. Like the Go
        // client's Flush, also wait for a server round trip, so subscriptions
        // made before are in effect for every other connection: a request
        // nobody listens to is answered "no responders" after the server
        // processed everything we sent before it.
        // Into our own inbox: the one subject every kind may publish to besides its work.
        let probe = format!(
            "{}.flush.{}",
            self.inbox,
            self.client.new_inbox().replace('.', "_")
        );
        let req = async_nats::Request::new().timeout(Some(FLUSH_TIMEOUT));
        match self.client.send_request(probe, req).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
            Err(e) if e.kind() == RequestErrorKind::TimedOut => Err(BusError::Timeout),
            Err(e) => Err(other("nats flush", e)),
        }
    }
}
