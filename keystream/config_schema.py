"""Every broker property Keystream accepts: Apache Kafka's names, types and defaults, one line each.

Where Keystream differs from Kafka (auto-create off, a local data dir, replication factors of 1 on a
single node, thread counts without effect) the property's doc says so; README's table is generated
from this list (`python -m keystream.config_docs`).
"""

from __future__ import annotations

from keystream.configdef import INT_MAX, LONG_MAX, Prop, at_least, between, one_of
from keystream.listeners import DEFAULT_PROTOCOL_MAP

DEFAULT_LOG_DIR = "./.keystream/data"
NO_EFFECT = " Accepted for compatibility with Kafka's server.properties; has no effect in Keystream."

# One line per property. Later issues append sasl.* and ldap.* here.
BROKER_SCHEMA: tuple[Prop, ...] = (
    # --- node and listeners
    Prop("node.id", "int", 1, "The id of this node (Kafka's KRaft name; `broker.id` is accepted as an alias).",
         at_least(0), aliases=("broker.id",)),
    Prop("listeners", "list", "SSL://127.0.0.1:9092",
         "Comma-separated `NAME://host:port` endpoints to listen on; an empty host means all interfaces, port 0 an ephemeral port."),
    Prop("advertised.listeners", "list", None,
         "Endpoints given to clients in metadata; defaults to `listeners` (an empty host becomes this machine's FQDN)."),
    Prop("listener.security.protocol.map", "list", DEFAULT_PROTOCOL_MAP,
         "Maps each listener name to PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."),
    # --- TLS (issue 4); PEM files only, as Kafka's ssl.keystore.type=PEM
    Prop("ssl.keystore.type", "string", "PEM", "Format of `ssl.keystore.location`; Keystream reads PEM.", one_of("PEM")),
    Prop("ssl.keystore.location", "string", None,
         "PEM file with the broker's private key and certificate chain (required by SSL and SASL_SSL listeners)."),
    Prop("ssl.key.password", "password", None, "Password of an encrypted private key in `ssl.keystore.location`."),
    Prop("ssl.truststore.type", "string", "PEM", "Format of `ssl.truststore.location`; Keystream reads PEM.", one_of("PEM")),
    Prop("ssl.truststore.location", "string", None, "PEM bundle of the CAs whose client certificates are trusted."),
    Prop("ssl.client.auth", "string", "required",
         "Client certificates: required, requested or none (Kafka's default is none; Keystream's is required).",
         one_of("required", "requested", "none")),
    Prop("ssl.enabled.protocols", "list", "TLSv1.2,TLSv1.3",
         "TLS versions offered; nothing older than TLSv1.2 can be enabled.", one_of("TLSv1.2", "TLSv1.3")),
    Prop("ssl.protocol", "string", "TLSv1.3", "Kafka's preferred-protocol setting; `ssl.enabled.protocols` decides.",
         one_of("TLS", "TLSv1.2", "TLSv1.3")),
    Prop("ssl.cipher.suites", "list", None,
         "OpenSSL names of the TLS 1.2 cipher suites allowed; empty keeps the secure default (AEAD with forward secrecy)."),
    Prop("ssl.crl.location", "string", None, "PEM certificate revocation list checked on every handshake (Keystream)."),
    Prop("ssl.handshake.timeout.ms", "long", 10000, "Close a connection whose TLS handshake takes longer (Keystream).",
         at_least(1)),
    Prop("ssl.principal.mapping.rules", "string", "DEFAULT",
         "KIP-371 rules (`RULE:pattern/replacement/[LU]`, `DEFAULT`) mapping a certificate's subject DN to a user name."),
    Prop("ssl.endpoint.identification.algorithm", "string", "https",
         "Host name verification of servers the broker connects to (client side only)."),
    # --- authorization (issue 4): always on; ACLs live in the metadata log
    Prop("super.users", "string", None,
         "Semicolon-separated principals allowed everything, e.g. `User:admin;User:CN=broker-0`."),
    Prop("allow.everyone.if.no.acl.found", "bool", False,
         "Allow an operation on a resource that has no ACL at all (Kafka's default, false, is kept)."),
    # --- storage
    Prop("log.dirs", "list", None, "Directories where partition logs are stored; defaults to `log.dir`."),
    Prop("log.dir", "string", DEFAULT_LOG_DIR,
         "The log directory used when `log.dirs` is not set (Kafka's default is /tmp/kafka-logs; Keystream keeps data next to the project)."),
    Prop("log.segment.bytes", "int", 1073741824, "Maximum size of one log segment file.", at_least(14)),
    Prop("log.roll.ms", "long", None, "Roll a new segment after this time; overrides `log.roll.hours`."),
    Prop("log.roll.hours", "int", 168, "Roll a new segment after this many hours.", at_least(1)),
    Prop("log.retention.ms", "long", None,
         "Delete segments older than this; -1 keeps them forever. Overrides the minutes and hours settings."),
    Prop("log.retention.minutes", "int", None, "Retention in minutes; overrides `log.retention.hours`."),
    Prop("log.retention.hours", "int", 168, "Retention in hours, used when neither ms nor minutes is set."),
    Prop("log.retention.bytes", "long", -1, "Maximum size of a partition before old segments are deleted; -1 is unlimited."),
    Prop("log.retention.check.interval.ms", "long", 300000, "How often retention is checked.", at_least(1)),
    Prop("log.cleanup.policy", "list", "delete", "Default cleanup policy of topics: delete, compact or both.",
         one_of("compact", "delete")),
    Prop("log.cleaner.enable", "bool", True, "Run the log cleaner that compacts topics with cleanup.policy=compact."),
    Prop("log.cleaner.backoff.ms", "long", 15000, "Sleep of the cleaner when there is nothing to clean.", at_least(0)),
    Prop("log.cleaner.delete.retention.ms", "long", 86400000,
         "How long tombstones are kept in compacted topics.", at_least(0)),
    Prop("log.cleaner.min.cleanable.ratio", "double", 0.5,
         "Minimum dirty/total ratio of a log before it is compacted.", between(0, 1)),
    Prop("log.cleaner.min.compaction.lag.ms", "long", 0,
         "Minimum time a record stays uncompacted.", at_least(0)),
    Prop("log.flush.interval.messages", "long", LONG_MAX,
         "fsync a partition after this many records.", at_least(1)),
    Prop("log.flush.interval.ms", "long", None,
         "fsync a partition when its oldest unflushed record is this old; defaults to `log.flush.scheduler.interval.ms`."),
    Prop("log.flush.scheduler.interval.ms", "long", LONG_MAX, "How often the flusher checks whether a log needs flushing."),
    Prop("log.index.interval.bytes", "int", 4096, "Bytes between offset-index entries.", at_least(0)),
    Prop("log.index.size.max.bytes", "int", 10485760, "Maximum size of an offset or time index file.", at_least(4)),
    Prop("log.message.timestamp.type", "string", "CreateTime",
         "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime).",
         one_of("CreateTime", "LogAppendTime")),
    Prop("log.message.timestamp.before.max.ms", "long", LONG_MAX,
         "Reject records whose CreateTime is further than this in the past.", at_least(0)),
    Prop("log.message.timestamp.after.max.ms", "long", LONG_MAX,
         "Reject records whose CreateTime is further than this in the future.", at_least(0)),
    Prop("num.recovery.threads.per.data.dir", "int", 1, "Threads per data dir for recovery." + NO_EFFECT, at_least(1)),
    # --- topics
    Prop("num.partitions", "int", 1, "Default number of partitions of a new topic.", at_least(1)),
    Prop("default.replication.factor", "int", 1,
         "Default replication factor of a new topic (a single node only has 1 replica; others get INVALID_REPLICATION_FACTOR)."),
    Prop("min.insync.replicas", "int", 1, "Replicas that must acknowledge an acks=all write.", at_least(1)),
    Prop("auto.create.topics.enable", "bool", False,
         "Create a topic when a client asks for an unknown one (Kafka's default is true; Keystream's is false)."),
    Prop("delete.topic.enable", "bool", True, "Allow DeleteTopics requests."),
    Prop("message.max.bytes", "int", 1048588, "Largest record batch the broker accepts.", at_least(0)),
    # --- network
    Prop("socket.request.max.bytes", "int", 104857600, "Largest request the broker reads.", at_least(1)),
    Prop("socket.send.buffer.bytes", "int", 102400, "SO_SNDBUF of client sockets; -1 uses the OS default."),
    Prop("socket.receive.buffer.bytes", "int", 102400, "SO_RCVBUF of client sockets; -1 uses the OS default."),
    Prop("max.connections", "int", INT_MAX, "Maximum number of client connections.", at_least(0)),
    Prop("max.connections.per.ip", "int", INT_MAX, "Maximum connections from one IP address.", at_least(0)),
    Prop("connections.max.idle.ms", "long", 600000, "Close connections idle for longer than this."),
    Prop("queued.max.requests", "int", 500, "Requests queued per connection before reading pauses.", at_least(1)),
    Prop("num.network.threads", "int", 3, "Network threads." + NO_EFFECT, at_least(1)),
    Prop("num.io.threads", "int", 8, "Request handler threads." + NO_EFFECT, at_least(1)),
    # --- consumer groups and offsets
    Prop("group.min.session.timeout.ms", "int", 6000, "Smallest session timeout a consumer may ask for."),
    Prop("group.max.session.timeout.ms", "int", 1800000, "Largest session timeout a consumer may ask for."),
    Prop("group.initial.rebalance.delay.ms", "int", 3000,
         "How long the first rebalance of a new group waits for more members."),
    Prop("group.max.size", "int", INT_MAX, "Maximum number of members in one group.", at_least(1)),
    Prop("offsets.topic.num.partitions", "int", 50, "Partitions of `__consumer_offsets`.", at_least(1)),
    Prop("offsets.topic.replication.factor", "short", 1,
         "Replication factor of `__consumer_offsets` (Kafka's default is 3; a single node has 1).", at_least(1)),
    Prop("offsets.topic.segment.bytes", "int", 104857600, "Segment size of `__consumer_offsets`.", at_least(1)),
    Prop("offsets.retention.minutes", "int", 10080, "Keep committed offsets of empty groups this long.", at_least(1)),
    Prop("offsets.retention.check.interval.ms", "long", 600000, "How often stale offsets are removed.", at_least(1)),
    Prop("offset.metadata.max.bytes", "int", 4096, "Largest metadata string of a committed offset."),
    # --- producers and transactions
    Prop("producer.id.expiration.ms", "int", 86400000,
         "Forget an idempotent producer's state after this long without writes.", at_least(1)),
    Prop("transactional.id.expiration.ms", "int", 604800000,
         "Expire a transactional id after this long without transactions.", at_least(1)),
    Prop("transaction.state.log.replication.factor", "short", 1,
         "Replication factor of `__transaction_state` (Kafka's default is 3)." + NO_EFFECT, at_least(1)),
    Prop("transaction.state.log.min.isr", "int", 1,
         "min.insync.replicas of `__transaction_state` (Kafka's default is 2)." + NO_EFFECT, at_least(1)),
)
