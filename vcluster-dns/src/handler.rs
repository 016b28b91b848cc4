//! One DNS request: answered from the cluster domain's records
//! ([`crate::lookup`]) or forwarded upstream ([`crate::forward`]), and
//! written back on the connection it came from.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::{Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::forward::Upstream;
use crate::index::{Index, KINDS};
use crate::lookup::{Answer, Outcome, Zone};

/// How many CNAMEs inside the zone are followed for one query.
const MAX_CHASE: usize = 8;

/// The request handler of the DNS server.
pub(crate) struct Handler {
    pub zone: Zone,
    pub index: Arc<Index>,
    pub upstream: Upstream,
}

/// The sections of a response.
struct Reply {
    metadata: Metadata,
    answers: Vec<Record>,
    authority: Vec<Record>,
    additionals: Vec<Record>,
}

impl Reply {
    fn code(request: &Request, code: ResponseCode) -> Self {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = code;
        metadata.recursion_available = true;
        Self {
            metadata,
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

impl Handler {
    async fn reply(&self, request: &Request) -> Reply {
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            return Reply::code(request, ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            return Reply::code(request, ResponseCode::FormErr);
        };
        let name = info.query.original().name().clone();
        let qtype = info.query.query_type();
        match self.zone.lookup(&self.index, &name, qtype) {
            Outcome::Forward => self.forward(request).await,
            // Until every kind is listed, an answer could wrongly deny a
            // name: the client retries instead.
            Outcome::Answer(_) if self.index.listed.load(Ordering::Acquire) < KINDS => {
                Reply::code(request, ResponseCode::ServFail)
            }
            Outcome::Answer(answer) => self.authoritative(request, answer, qtype).await,
        }
    }

    async fn authoritative(
        &self,
        request: &Request,
        mut answer: Answer,
        qtype: RecordType,
    ) -> Reply {
        // An ExternalName's target: followed inside the zone, asked
        // upstream outside it.
        let mut chase = answer.chase.take();
        for _ in 0..MAX_CHASE {
            let Some(target) = chase.take() else { break };
            match self.zone.lookup(&self.index, &target, qtype) {
                Outcome::Answer(mut next) => {
                    answer.answers.append(&mut next.answers);
                    answer.code = next.code;
                    answer.authority = next.authority;
                    chase = next.chase.take();
                }
                Outcome::Forward => match self.upstream.resolve(&target, qtype).await {
                    Ok(mut upstream) => {
                        answer.answers.append(&mut upstream.answers);
                        answer.code = upstream.metadata.response_code;
                    }
                    Err(err) => {
                        tracing::debug!(target = %target, error = %err, "cannot follow an ExternalName upstream")
                    }
                },
            }
        }
        let mut reply = Reply::code(request, answer.code);
        reply.metadata.authoritative = true;
        reply.answers = answer.answers;
        reply.authority = answer.authority;
        reply.additionals = answer.additionals;
        reply
    }

    async fn forward(&self, request: &Request) -> Reply {
        match self.upstream.exchange(request.as_slice()).await {
            Ok(message) => from_upstream(request, message),
            Err(err) => {
                tracing::debug!(error = %err, "forwarding failed");
                Reply::code(request, ResponseCode::ServFail)
            }
        }
    }
}

fn from_upstream(request: &Request, message: Message) -> Reply {
    let mut metadata = message.metadata;
    metadata.id = request.metadata.id;
    metadata.message_type = MessageType::Response;
    metadata.authoritative = false;
    // The answer is re-encoded here (and truncated again if too large for
    // this client's UDP size).
    metadata.truncation = false;
    Reply {
        metadata,
        answers: message.answers,
        authority: message.authorities,
        additionals: message.additionals,
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let reply = self.reply(request).await;
        let edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().max(512));
            edns
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let metadata = reply.metadata;
        let response = builder.build(
            metadata,
            reply.answers.iter(),
            reply.authority.iter(),
            std::iter::empty(),
            reply.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(err) => {
                tracing::debug!(error = %err, "cannot send a DNS response");
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: failed,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
