use std::collections::{BTreeMap, HashMap};
use std::iter;
use std::sync::{Arc, Mutex, PoisonError};

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Header, HeaderCounts, Message, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use hickory_server::net::NetError;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{Catalog, MessageResponse, MessageResponseBuilder, ZoneHandler};

use super::dname::{DnameIndex, MAX_DNAMES, TooLong};
use super::fault::FaultStage;
use super::log::{QueryEntry, QueryLog};
use super::rrsigs::ZoneRecords;
use super::world::SignedWorld;

/// What the server knows about one query: the input of every response stage and of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryView {
    /// Lowercased, with the trailing dot; empty if the request carried no question.
    pub qname: String,
    pub qtype: Option<RecordType>,
    /// EDNS DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// CD bit (RFC 4035 §3.2.2).
    pub checking_disabled: bool,
    pub tcp: bool,
}

/// What happens to a response after a stage has edited it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Continue with the next stage, then send.
    Send,
    /// Send nothing (the client times out); later stages are skipped.
    Drop,
    /// Send, but only after this delay (a slow server).
    SendAfter(std::time::Duration),
}

/// One edit of a decoded response, applied in order after the catalog has answered.
///
/// The hickory workarounds are stages; the scenario's faults (`fault::FaultStage`) run after them.
pub trait ResponseStage: Send + Sync {
    fn apply(&self, query: &QueryView, response: &mut Message) -> Disposition;
}

/// The one request handler in front of the catalog.
///
/// Route (DS at a child apex goes to the parent: hickory defect 1) → catalog answers →
/// decode → response stages (hickory defect 2, then faults) → send → log.
pub(crate) struct WorldHandler {
    catalog: Catalog,
    /// Child apex → a catalog holding only the parent zone, and that zone's origin.
    ds_parents: HashMap<LowerName, (Catalog, Name)>,
    /// Each zone's records, for the RRSIGs of its answers (made on first use).
    records: BTreeMap<Name, Arc<ZoneRecords>>,
    stages: Vec<Box<dyn ResponseStage>>,
    /// The scenario's faults, applied after the workaround stages.
    faults: FaultStage,
    /// hickory-server has no DNAME support; redirection is synthesized here (RFC 6672).
    dnames: DnameIndex,
    /// Zone origins of the world: a DNAME target outside them is left to the client.
    origins: Vec<Name>,
    log: QueryLog,
}

impl WorldHandler {
    pub(crate) fn new(world: &SignedWorld, log: QueryLog) -> Self {
        let handlers: BTreeMap<Name, Arc<InMemoryZoneHandler>> =
            world.zones().iter().map(|z| (z.origin.clone(), z.handler())).collect();
        let mut catalog = Catalog::new();
        for (origin, handler) in &handlers {
            let handler: Arc<dyn ZoneHandler> = handler.clone();
            catalog.upsert(LowerName::new(origin), vec![handler]);
        }
        let mut ds_parents = HashMap::new();
        for zone in world.zones() {
            let Some(parent) = zone.parent.as_ref() else {
                continue;
            };
            let handler: Arc<dyn ZoneHandler> = handlers
                .get(parent)
                .expect("every parent is a zone of the same world")
                .clone();
            let mut parent_only = Catalog::new();
            parent_only.upsert(LowerName::new(parent), vec![handler]);
            ds_parents.insert(LowerName::new(&zone.origin), (parent_only, parent.clone()));
        }
        Self {
            catalog,
            ds_parents,
            records: world
                .zones()
                .iter()
                .map(|z| (z.origin.clone(), z.records.clone()))
                .collect(),
            stages: vec![Box::new(Nsec3OffPositiveAnswers)],
            faults: FaultStage::new(world.faults().to_vec()),
            dnames: DnameIndex::new(world),
            origins: world.zones().iter().map(|z| z.origin.clone()).collect(),
            log,
        }
    }

    /// Hickory defect 1: with parent and child in one catalog, the child answers `DS <apex>`
    /// with NODATA, breaking the chain of trust. The DS RRset lives in the parent (RFC 4035
    /// §3.1.4.1), so route exactly those queries there. Routing every DS query to a parent
    /// would break QNAME-minimising validators (delv asks DS for names inside a zone too).
    fn route(&self, request: &Request, view: &QueryView) -> (&Catalog, Option<&ZoneRecords>) {
        let qname = request.queries.queries().first().map(|q| q.name());
        if view.qtype == Some(RecordType::DS)
            && let Some((parent, origin)) = qname.and_then(|name| self.ds_parents.get(name))
        {
            return (parent, self.records.get(origin).map(|r| &**r));
        }
        // The catalog answers from the closest enclosing zone of the query name.
        let zone = qname.and_then(|name| {
            let mut at = Name::from(name);
            loop {
                if let Some(records) = self.records.get(&at) {
                    break Some(&**records);
                }
                if at.is_root() {
                    break None;
                }
                at = at.base_name();
            }
        });
        (&self.catalog, zone)
    }

    /// The catalog's answer to `request`, decoded for editing, with the RRSIGs of the zone
    /// that answered when the client asked for them (RFC 4035 §3.1.1).
    async fn catalog_answer<T: Time>(&self, request: &Request, view: &QueryView) -> Message {
        let capture = Capture::default();
        let (catalog, zone) = self.route(request, view);
        catalog.handle_request::<_, T>(request, capture.clone()).await;
        let servfail = || {
            let mut m = Message::error_msg(request.metadata.id, request.metadata.op_code, ResponseCode::ServFail);
            m.metadata.recursion_desired = request.metadata.recursion_desired;
            m
        };
        // The catalog always answers; if its answer did not round-trip, say SERVFAIL.
        let mut message = capture.take().unwrap_or_else(servfail);
        if view.dnssec_ok
            && let Some(zone) = zone
        {
            let signed = zone
                .add_rrsigs(&mut message.answers)
                .and_then(|()| zone.add_rrsigs(&mut message.authorities))
                .and_then(|()| zone.add_rrsigs(&mut message.additionals));
            // Every RRset was checked to be signable when the zone was built.
            if signed.is_err() {
                return servfail();
            }
        }
        message
    }

    /// RFC 6672 §3.2 (the server algorithm): below a DNAME owner, answer with the DNAME, a
    /// synthesized CNAME, and then restart at the substituted name, as RFC 1034 §4.3.2 does
    /// for a CNAME. The rest of the answer comes from the catalog for the final name, whose
    /// RCODE the response carries (RFC 6604 §2: the RCODE of the last name in the chain).
    async fn answer_with_dnames<T: Time>(&self, request: &Request, view: &QueryView) -> Message {
        let Some(first) = request.queries.queries().first().filter(|_| !self.dnames.is_empty()) else {
            return self.catalog_answer::<T>(request, view).await;
        };
        let mut qname = Name::from(first.name());
        let mut chain: Vec<Record> = Vec::new();
        let mut too_long = false;
        let mut stop = false;
        for _ in 0..MAX_DNAMES {
            let Some(dname) = self.dnames.covering(&qname) else {
                break;
            };
            chain.extend(dname.records(view.dnssec_ok));
            match dname.substitute(&qname) {
                // RFC 1034 §4.3.2 step 3a: a CNAME answers a CNAME query; no restart.
                Ok(target) if view.qtype == Some(RecordType::CNAME) => {
                    chain.push(dname.cname(&qname, &target));
                    stop = true;
                    break;
                }
                Ok(target) => {
                    chain.push(dname.cname(&qname, &target));
                    qname = target;
                }
                Err(TooLong) => {
                    too_long = true;
                    break;
                }
            }
        }
        if chain.is_empty() {
            return self.catalog_answer::<T>(request, view).await;
        }

        let in_world = self.origins.iter().any(|o| o.zone_of(&qname));
        let rewritten = (!too_long && !stop && in_world)
            .then(|| rewrite_qname(request, &qname))
            .flatten();
        let mut response = match &rewritten {
            Some(sub) => self.catalog_answer::<T>(sub, &QueryView::of(sub)).await,
            // The original request gives the header and EDNS the catalog would use.
            None => {
                let mut m = self.catalog_answer::<T>(request, view).await;
                m.answers.clear();
                m.authorities.clear();
                m.additionals.clear();
                // RFC 6672 §2.2: a substituted name that does not fit is YXDOMAIN; a target
                // outside the world, or a CNAME query, ends with the chain (NOERROR).
                m.metadata.response_code = if too_long {
                    ResponseCode::YXDomain
                } else {
                    ResponseCode::NoError
                };
                m
            }
        };
        response.metadata.authoritative = true;
        chain.append(&mut response.answers);
        response.answers = chain;
        response
    }
}

/// A copy of `request` asking for `qname` instead, for the catalog to answer.
fn rewrite_qname(request: &Request, qname: &Name) -> Option<Request> {
    let mut message = Message::from_vec(request.as_slice()).ok()?;
    message.queries.first_mut()?.set_name(qname.clone());
    let bytes = message.to_vec().ok()?;
    Request::from_bytes(bytes, request.src(), request.protocol()).ok()
}

#[async_trait::async_trait]
impl RequestHandler for WorldHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let rebuilt = without_question_pointers(request);
        let request = rebuilt.as_ref().unwrap_or(request);
        let view = QueryView::of(request);
        let mut response = self.answer_with_dnames::<T>(request, &view).await;

        let mut disposition = Disposition::Send;
        for stage in &self.stages {
            disposition = stage.apply(&view, &mut response);
            if disposition == Disposition::Drop {
                break;
            }
        }
        let mut fault = None;
        if disposition != Disposition::Drop {
            (disposition, fault) = self.faults.apply(&view, &mut response);
        }
        if let Disposition::SendAfter(delay) = disposition {
            tokio::time::sleep(delay).await;
        }

        // Log before sending: a client that gets this answer may finish at once, and the
        // witness must then already hold the query (the log is read right after the sender).
        let (rcode, answers) = match disposition {
            Disposition::Drop => ("DROPPED".to_string(), 0),
            _ => (
                rcode_name(response.metadata.response_code),
                u16::try_from(response.answers.len()).unwrap_or(u16::MAX),
            ),
        };
        self.log.push(QueryEntry {
            qname: view.qname.clone(),
            qtype: view.qtype.map(|t| t.to_string()).unwrap_or_default(),
            dnssec_ok: view.dnssec_ok,
            checking_disabled: view.checking_disabled,
            tcp: view.tcp,
            rcode,
            answers,
            fault: fault.map(str::to_string),
        });
        let info = match disposition {
            Disposition::Drop => None,
            // A client that went away is its business; the answer was logged as given.
            Disposition::Send | Disposition::SendAfter(_) => send(request, &response, &mut response_handle).await.ok(),
        };
        info.unwrap_or_else(|| {
            ResponseInfo::from(Header {
                metadata: response.metadata,
                counts: HeaderCounts::default(),
            })
        })
    }
}

impl QueryView {
    fn of(request: &Request) -> Self {
        let query = request.queries.queries().first();
        Self {
            qname: query
                .map(|q| q.name().to_string().to_ascii_lowercase())
                .unwrap_or_default(),
            qtype: query.map(|q| q.query_type()),
            dnssec_ok: request.edns.as_ref().is_some_and(|edns| edns.flags().dnssec_ok),
            checking_disabled: request.metadata.checking_disabled,
            tcp: request.protocol() == Protocol::Tcp,
        }
    }
}

/// Hickory defect 2: in NSEC3 mode hickory adds the QNAME's NSEC3 to positive answers, and
/// hickory-resolver then judges every such answer bogus. A positive, non-wildcard answer needs
/// no denial proof (RFC 5155 §7.2.6 only asks for one with wildcard expansion), so strip NSEC3
/// and the RRSIGs over them from the authority section.
struct Nsec3OffPositiveAnswers;

impl ResponseStage for Nsec3OffPositiveAnswers {
    fn apply(&self, _query: &QueryView, response: &mut Message) -> Disposition {
        if response.answers.is_empty() {
            return Disposition::Send;
        }
        // RFC 4035 §5.3.4: an RRSIG with fewer labels than its owner marks a wildcard answer,
        // whose NSEC3 (the next-closer cover) must stay.
        let wildcard = response.answers.iter().any(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) => sig.input().num_labels < r.name.num_labels(),
            _ => false,
        });
        if !wildcard {
            response.authorities.retain(|r| !is_nsec3_or_its_rrsig(r));
        }
        Disposition::Send
    }
}

fn is_nsec3_or_its_rrsig(record: &Record) -> bool {
    match &record.data {
        RData::DNSSEC(DNSSECRData::NSEC3(_)) => true,
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => sig.input().type_covered == RecordType::NSEC3,
        _ => false,
    }
}

/// `request` with its question section free of compression pointers, or `None` if it was
/// already (the usual case) or cannot be re-encoded.
///
/// Hickory defect 3: a response echoes the request's question octets as they came, and a
/// compression pointer among them points at an offset of the *request* (RFC 1035 §4.1.4).
/// Copied into the response, it points into the response's header, and the answer does not
/// decode (`ci/fuzz` found it: `test.` followed by a pointer to offset 0). Re-encoding the
/// message writes the names in full (the first time each occurs) and keeps their case, which
/// a resolver may check (draft-vixie-dnsext-dns0x20).
fn without_question_pointers(request: &Request) -> Option<Request> {
    let mut plain = Vec::new();
    let mut encoder = BinEncoder::new(&mut plain);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    for q in request.queries.queries() {
        q.original().emit(&mut encoder).ok()?;
    }
    if plain == request.queries.as_bytes() {
        return None;
    }
    let bytes = Message::from_vec(request.as_slice()).ok()?.to_vec().ok()?;
    Request::from_bytes(bytes, request.src(), request.protocol()).ok()
}

/// Encode the (edited) response and hand it to the real response handle, which applies the
/// transport's size limit and sets TC when it truncates (RFC 1035 §4.2.1, RFC 6891 §7).
async fn send<R: ResponseHandler>(
    request: &Request,
    response: &Message,
    handle: &mut R,
) -> Result<ResponseInfo, NetError> {
    let edns = response.edns.clone();
    let message = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
        response.metadata,
        response.answers.iter(),
        response.authorities.iter(),
        iter::empty(),
        response.additionals.iter(),
    );
    handle.send_response(message).await
}

fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        ResponseCode::BADVERS => "BADVERS".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// A response handler that keeps the encoded response: the catalog's answer at unlimited
/// size for editing here, or (`dns::wire`) the final response cut to the transport's size as
/// hickory's listener cuts it.
#[derive(Clone)]
pub(super) struct Capture {
    bytes: Arc<Mutex<Option<Vec<u8>>>>,
    max: u16,
}

impl Default for Capture {
    fn default() -> Self {
        Capture::limited(u16::MAX)
    }
}

impl Capture {
    pub(super) fn limited(max: u16) -> Self {
        Capture {
            bytes: Arc::default(),
            max,
        }
    }

    /// The bytes sent, if a response was.
    pub(super) fn take_bytes(&self) -> Option<Vec<u8>> {
        self.bytes.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn take(&self) -> Option<Message> {
        Message::from_vec(&self.take_bytes()?).ok()
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(self.max);
        let info = response.destructive_emit(&mut encoder)?;
        *self.bytes.lock().unwrap_or_else(PoisonError::into_inner) = Some(bytes);
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::A;

    fn view() -> QueryView {
        QueryView {
            qname: "mx1.example.test.".into(),
            qtype: Some(RecordType::A),
            dnssec_ok: true,
            checking_disabled: false,
            tcp: false,
        }
    }

    #[test]
    fn rcode_names() {
        assert_eq!(rcode_name(ResponseCode::NoError), "NOERROR");
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::BADSIG), "RCODE16");
    }

    #[test]
    fn nsec3_is_kept_on_negative_answers() {
        let world = SignedWorld::build(&crate::dns::fixture::sample_spec()).unwrap();
        let example = world
            .zones()
            .iter()
            .find(|z| z.origin.to_string() == "example.test.")
            .unwrap();
        let records = &example.records;
        let mut nsec3: Vec<Record> = records
            .rrsets()
            .iter()
            .filter(|s| s.record_type() == RecordType::NSEC3)
            .flat_map(|s| s.records_without_rrsigs().cloned().collect::<Vec<_>>())
            .collect();
        records.add_rrsigs(&mut nsec3).unwrap();
        assert!(nsec3.len() >= 2);

        let mut negative = Message::new(1, MessageType::Response, OpCode::Query);
        negative.authorities = nsec3.clone();
        assert_eq!(Nsec3OffPositiveAnswers.apply(&view(), &mut negative), Disposition::Send);
        assert_eq!(negative.authorities.len(), nsec3.len());

        let mut positive = negative.clone();
        positive.answers.push(Record::from_rdata(
            Name::from_ascii("mx1.example.test.").unwrap(),
            300,
            RData::A(A::new(192, 0, 2, 10)),
        ));
        Nsec3OffPositiveAnswers.apply(&view(), &mut positive);
        assert!(positive.authorities.is_empty());
    }
}
