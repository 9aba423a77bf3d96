//! Label rules: from a JSON file and/or `--label-rule` flags; first match wins, then the
//! default label. The original's random labels exist only behind `--random-labels --seed`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cidr::{IpNet, parse_ip, parse_net};
use crate::columns::cell_u32;
use crate::config::Config;
use crate::error::BuildError;
use crate::random::randint_0_100;

/// The original's threshold: `randint(0, 100) > 85` is an attack.
pub const RANDOM_SET_IF_ABOVE: u64 = 85;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub label_value: i64,
    pub label_name: String,
}

/// The rules file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Label>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// One rule as written: every condition present must hold (AND); a condition's list holds
/// alternatives (OR). A rule without conditions matches every row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub label_value: i64,
    pub label_name: String,
    /// Source address in one of these networks (ip_src, ipv6_src, arp_psrc; flows: src_ip).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub src: Vec<String>,
    /// Destination address in one of these networks (ip_dst, ipv6_dst, arp_pdst; flows: dst_ip).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dst: Vec<String>,
    /// Source or destination address in one of these networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addr: Vec<String>,
    /// Any port column (`*sport`, `*dport`; flows: src_port, dst_port) equal to a port or inside
    /// a range `a-b`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port: Vec<Scalar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub src_port: Vec<Scalar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dst_port: Vec<Scalar>,
    /// tcp, udp, icmp, icmpv6, arp, dns, ipv4, ipv6, or an IP protocol number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocol: Vec<Scalar>,
    /// `ts` at or after this instant (RFC 3339); a flow matches when it was last seen at or
    /// after it (its span overlaps the window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_from: Option<String>,
    /// `ts` before this instant (RFC 3339); a flow matches when it was first seen before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_until: Option<String>,
    /// The input file's directory ends with one of these paths (`django`, `data/django`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dir: Vec<String>,
    /// Column equal to one of the given strings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub equals: BTreeMap<String, Vec<String>>,
}

/// A number or a string in the rules file (`8080` or `"8000-8100"`, `6` or `"tcp"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Number(u64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Number(n) => n.to_string(),
            Scalar::Text(t) => t.trim().to_string(),
        }
    }
}

/// How labels were assigned, as written to the metadata's `label_rules` (AntiNex reads
/// `labels`/`label_values`; the rest documents the run).
#[derive(Debug, Clone, Serialize)]
pub struct LabelRulesMeta {
    pub method: &'static str,
    pub labels: Vec<String>,
    pub label_values: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Label>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_if_above: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_file: Option<String>,
}

#[derive(Debug, Clone)]
enum Proto {
    /// Matches `ip_proto`/`ipv6_nh` equal to the number, or any value in a column with the prefix.
    Named {
        number: Option<u32>,
        prefix: &'static str,
    },
    Number(u32),
}

#[derive(Debug, Clone)]
struct Rule {
    label: usize,
    src: Vec<IpNet>,
    dst: Vec<IpNet>,
    addr: Vec<IpNet>,
    port: Vec<(u32, u32)>,
    src_port: Vec<(u32, u32)>,
    dst_port: Vec<(u32, u32)>,
    protocol: Vec<Proto>,
    ts_from: Option<i128>,
    ts_until: Option<i128>,
    dir: Vec<PathBuf>,
    equals: Vec<(String, Vec<Vec<u8>>)>,
}

/// All rules, compiled; labels are indices into [`Labeler::labels`].
#[derive(Debug, Clone)]
pub struct Labeler {
    rules: Vec<Rule>,
    default: usize,
    random_seed: Option<u64>,
    labels: Vec<Label>,
    meta: LabelRulesMeta,
}

impl Labeler {
    pub fn from_config(config: &Config) -> Result<Self, BuildError> {
        let mut specs = Vec::new();
        for (i, text) in config.label_rules.iter().enumerate() {
            let spec = parse_flag_rule(text).map_err(|message| BuildError::Rules {
                source_name: format!("--label-rule #{} `{text}`", i + 1),
                message,
            })?;
            specs.push(spec);
        }
        let mut file_default = None;
        let rules_file = config.label_rules_file.as_ref();
        if let Some(path) = rules_file {
            let bytes = std::fs::read(path).map_err(|e| BuildError::Rules {
                source_name: path.display().to_string(),
                message: e.to_string(),
            })?;
            let file: RulesFile =
                serde_json::from_slice(&bytes).map_err(|e| BuildError::Rules {
                    source_name: path.display().to_string(),
                    message: e.to_string(),
                })?;
            file_default = file.default;
            specs.extend(file.rules);
        }
        let default = Label {
            label_value: config
                .default_label_value
                .or(file_default.as_ref().map(|d| d.label_value))
                .unwrap_or(0),
            label_name: config
                .default_label_name
                .clone()
                .or(file_default.map(|d| d.label_name))
                .unwrap_or_else(|| "not_attack".to_string()),
        };
        let rules_file = rules_file.map(|p| p.display().to_string());
        if config.random_labels {
            if !specs.is_empty() {
                return Err(BuildError::Config(
                    "--random-labels cannot be combined with label rules".into(),
                ));
            }
            let seed = config.seed.ok_or_else(|| {
                BuildError::Config("--random-labels needs --seed (or DS_SEED)".into())
            })?;
            return Ok(Self::random(seed, rules_file));
        }
        Self::from_specs(specs, default, rules_file)
    }

    /// The original's labelling, reproducible: per input row, `randint(0,100) > 85` => attack.
    fn random(seed: u64, rules_file: Option<String>) -> Self {
        let labels = vec![
            Label {
                label_value: 0,
                label_name: "not_attack".into(),
            },
            Label {
                label_value: 1,
                label_name: "attack".into(),
            },
        ];
        let meta = LabelRulesMeta {
            method: "random",
            labels: labels.iter().map(|l| l.label_name.clone()).collect(),
            label_values: labels.iter().map(|l| l.label_value).collect(),
            default: None,
            rules: Vec::new(),
            set_if_above: Some(RANDOM_SET_IF_ABOVE),
            seed: Some(seed),
            rules_file,
        };
        Labeler {
            rules: Vec::new(),
            default: 0,
            random_seed: Some(seed),
            labels,
            meta,
        }
    }

    pub fn from_specs(
        specs: Vec<RuleSpec>,
        default: Label,
        rules_file: Option<String>,
    ) -> Result<Self, BuildError> {
        let mut labels: Vec<Label> = Vec::new();
        let mut intern = |label: Label, source: &str| -> Result<usize, BuildError> {
            if label.label_name.is_empty() {
                return Err(BuildError::Rules {
                    source_name: source.to_string(),
                    message: "label_name is empty".into(),
                });
            }
            match labels
                .iter()
                .position(|l| l.label_value == label.label_value)
            {
                Some(i) if labels.get(i) == Some(&label) => Ok(i),
                Some(i) => Err(BuildError::Rules {
                    source_name: source.to_string(),
                    message: format!(
                        "label_value {} is named both `{}` and `{}`",
                        label.label_value,
                        labels.get(i).map(|l| l.label_name.as_str()).unwrap_or(""),
                        label.label_name
                    ),
                }),
                None => {
                    labels.push(label);
                    Ok(labels.len() - 1)
                }
            }
        };
        let default_index = intern(default.clone(), "default label")?;
        let mut rules = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let source = spec
                .name
                .clone()
                .unwrap_or_else(|| format!("rule #{}", i + 1));
            let label = intern(
                Label {
                    label_value: spec.label_value,
                    label_name: spec.label_name.clone(),
                },
                &source,
            )?;
            let rule = compile(spec, label).map_err(|message| BuildError::Rules {
                source_name: source.clone(),
                message,
            })?;
            rules.push(rule);
        }
        // Labels are reported in value order; rules refer to them by index.
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by_key(|i| labels.get(*i).map(|l| l.label_value));
        let mut new_index = vec![0; labels.len()];
        for (new, old) in order.iter().enumerate() {
            if let Some(slot) = new_index.get_mut(*old) {
                *slot = new;
            }
        }
        let remap = |i: usize| new_index.get(i).copied().unwrap_or(0);
        for rule in &mut rules {
            rule.label = remap(rule.label);
        }
        let sorted: Vec<Label> = order
            .iter()
            .filter_map(|i| labels.get(*i).cloned())
            .collect();
        let meta = LabelRulesMeta {
            method: "rules",
            labels: sorted.iter().map(|l| l.label_name.clone()).collect(),
            label_values: sorted.iter().map(|l| l.label_value).collect(),
            default: Some(default),
            rules: specs,
            set_if_above: None,
            seed: None,
            rules_file,
        };
        Ok(Labeler {
            rules,
            default: remap(default_index),
            random_seed: None,
            labels: sorted,
            meta,
        })
    }

    /// Every label that can be assigned, in label_value order.
    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    pub fn meta(&self) -> &LabelRulesMeta {
        &self.meta
    }

    /// The rules resolved against one input file's header and directory.
    pub fn for_file(&self, header: &[String], path: &Path) -> FileLabeler {
        let dir = path.parent().unwrap_or(Path::new(""));
        let rules = self
            .rules
            .iter()
            .filter_map(|rule| resolve(rule, header, dir))
            .collect();
        FileLabeler {
            rules,
            default: self.default,
            random_seed: self.random_seed,
        }
    }
}

/// A rule's condition bound to column positions of one file.
#[derive(Debug, Clone)]
enum Cond {
    Addr {
        cols: Vec<usize>,
        nets: Vec<IpNet>,
    },
    Port {
        cols: Vec<usize>,
        ranges: Vec<(u32, u32)>,
    },
    Proto(Vec<ProtoCheck>),
    Time {
        col: usize,
        from: Option<i128>,
        until: Option<i128>,
    },
    /// A flow's `[first_seen, last_seen]` (ms) overlaps the window `[from, until)`.
    FlowTime {
        first_col: usize,
        last_col: usize,
        from: Option<i128>,
        until: Option<i128>,
    },
    Equals {
        col: usize,
        values: Vec<Vec<u8>>,
    },
}

#[derive(Debug, Clone)]
struct ProtoCheck {
    number: Option<u32>,
    number_cols: Vec<usize>,
    presence_cols: Vec<usize>,
}

#[derive(Debug, Clone)]
struct FileRule {
    label: usize,
    conds: Vec<Cond>,
}

/// Labels rows of one input file.
#[derive(Debug, Clone)]
pub struct FileLabeler {
    rules: Vec<FileRule>,
    default: usize,
    random_seed: Option<u64>,
}

impl FileLabeler {
    /// The label index of a row. `row` is the 0-based ordinal of the row among all input rows
    /// (used only by random labels).
    pub fn label(&self, record: &csv::ByteRecord, row: u64) -> usize {
        if let Some(seed) = self.random_seed {
            return usize::from(randint_0_100(seed, row) > RANDOM_SET_IF_ABOVE);
        }
        self.rules
            .iter()
            .find(|rule| rule.conds.iter().all(|c| cond_holds(c, record)))
            .map_or(self.default, |rule| rule.label)
    }
}

fn cell(record: &csv::ByteRecord, col: usize) -> &[u8] {
    record.get(col).unwrap_or_default()
}

fn cond_holds(cond: &Cond, record: &csv::ByteRecord) -> bool {
    match cond {
        Cond::Addr { cols, nets } => cols.iter().any(|c| {
            parse_ip(cell(record, *c)).is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)))
        }),
        Cond::Port { cols, ranges } => cols.iter().any(|c| {
            cell_u32(cell(record, *c))
                .is_some_and(|p| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&p)))
        }),
        Cond::Proto(checks) => checks.iter().any(|check| {
            let by_number = check.number.is_some_and(|n| {
                check
                    .number_cols
                    .iter()
                    .any(|c| cell_u32(cell(record, *c)) == Some(n))
            });
            by_number
                || check
                    .presence_cols
                    .iter()
                    .any(|c| !cell(record, *c).is_empty())
        }),
        Cond::Time { col, from, until } => match cell_time_ns(cell(record, *col)) {
            Some(t) => from.is_none_or(|f| t >= f) && until.is_none_or(|u| t < u),
            None => false,
        },
        Cond::FlowTime {
            first_col,
            last_col,
            from,
            until,
        } => match (
            cell_ms_ns(cell(record, *first_col)),
            cell_ms_ns(cell(record, *last_col)),
        ) {
            (Some(first), Some(last)) => {
                from.is_none_or(|f| last >= f) && until.is_none_or(|u| first < u)
            }
            _ => false,
        },
        Cond::Equals { col, values } => {
            let v = cell(record, *col);
            values.iter().any(|want| want.as_slice() == v)
        }
    }
}

const SRC_COLUMNS: [&str; 4] = ["ip_src", "ipv6_src", "arp_psrc", FLOW_SRC];
const DST_COLUMNS: [&str; 4] = ["ip_dst", "ipv6_dst", "arp_pdst", FLOW_DST];
const PROTO_NUMBER_COLUMNS: [&str; 2] = ["ip_proto", "ipv6_nh"];

// Flow records (schema netpipe-flows, NFStream's names): one address, port and protocol
// column per side, and a time span instead of a packet time.
const FLOW_SRC: &str = "src_ip";
const FLOW_DST: &str = "dst_ip";
const FLOW_SRC_PORT: &str = "src_port";
const FLOW_DST_PORT: &str = "dst_port";
const FLOW_PROTOCOL: &str = "protocol";
const FLOW_IP_VERSION: &str = "ip_version";
const FLOW_FIRST_SEEN: &str = "bidirectional_first_seen_ms";
const FLOW_LAST_SEEN: &str = "bidirectional_last_seen_ms";

/// A flow cell in milliseconds since the epoch (NFStream's unit) as nanoseconds.
fn cell_ms_ns(cell: &[u8]) -> Option<i128> {
    let ms: i128 = std::str::from_utf8(cell).ok()?.trim().parse().ok()?;
    ms.checked_mul(1_000_000)
}

/// A flow file's protocol check: `protocol` (IP protocol number) for named and numbered
/// protocols, `ip_version` for ipv4/ipv6; arp and dns are never flows.
fn flow_proto_check(proto: &Proto, header: &[String]) -> ProtoCheck {
    let col = |name: &str| positions(header, |n| n == name);
    let (number, number_cols) = match proto {
        Proto::Named {
            number: Some(n), ..
        }
        | Proto::Number(n) => (Some(*n), col(FLOW_PROTOCOL)),
        Proto::Named {
            number: None,
            prefix: "ip_",
        } => (Some(4), col(FLOW_IP_VERSION)),
        Proto::Named {
            number: None,
            prefix: "ipv6_",
        } => (Some(6), col(FLOW_IP_VERSION)),
        Proto::Named { number: None, .. } => (None, Vec::new()),
    };
    ProtoCheck {
        number,
        number_cols,
        presence_cols: Vec::new(),
    }
}

fn positions(header: &[String], mut wanted: impl FnMut(&str) -> bool) -> Vec<usize> {
    header
        .iter()
        .enumerate()
        .filter(|(_, name)| wanted(name))
        .map(|(i, _)| i)
        .collect()
}

/// Binds a rule to one file; `None` when it can never match there (its directory does not
/// match, or a condition's columns are absent).
fn resolve(rule: &Rule, header: &[String], dir: &Path) -> Option<FileRule> {
    if !rule.dir.is_empty() && !rule.dir.iter().any(|d| dir.ends_with(d)) {
        return None;
    }
    let is_flow = header.iter().any(|n| n == FLOW_FIRST_SEEN);
    let mut conds = Vec::new();
    let mut push = |cond: Cond| -> Option<()> {
        let usable = match &cond {
            Cond::Addr { cols, .. } | Cond::Port { cols, .. } => !cols.is_empty(),
            Cond::Proto(checks) => checks
                .iter()
                .any(|c| !c.number_cols.is_empty() || !c.presence_cols.is_empty()),
            Cond::Time { .. } | Cond::FlowTime { .. } | Cond::Equals { .. } => true,
        };
        usable.then(|| conds.push(cond))
    };
    let src = || positions(header, |n| SRC_COLUMNS.contains(&n));
    let dst = || positions(header, |n| DST_COLUMNS.contains(&n));
    if !rule.src.is_empty() {
        push(Cond::Addr {
            cols: src(),
            nets: rule.src.clone(),
        })?;
    }
    if !rule.dst.is_empty() {
        push(Cond::Addr {
            cols: dst(),
            nets: rule.dst.clone(),
        })?;
    }
    if !rule.addr.is_empty() {
        let mut cols = src();
        cols.extend(dst());
        push(Cond::Addr {
            cols,
            nets: rule.addr.clone(),
        })?;
    }
    let port_conds = [
        (&rule.port, "port"),
        (&rule.src_port, "sport"),
        (&rule.dst_port, "dport"),
    ];
    for (ranges, kind) in port_conds {
        if ranges.is_empty() {
            continue;
        }
        let cols = positions(header, |n| match kind {
            "port" => {
                n.ends_with("sport")
                    || n.ends_with("dport")
                    || n == FLOW_SRC_PORT
                    || n == FLOW_DST_PORT
            }
            "sport" => n.ends_with("sport") || n == FLOW_SRC_PORT,
            _ => n.ends_with("dport") || n == FLOW_DST_PORT,
        });
        push(Cond::Port {
            cols,
            ranges: ranges.clone(),
        })?;
    }
    if !rule.protocol.is_empty() {
        let number_cols = positions(header, |n| PROTO_NUMBER_COLUMNS.contains(&n));
        let checks = rule
            .protocol
            .iter()
            .map(|p| match p {
                _ if is_flow => flow_proto_check(p, header),
                Proto::Named { number, prefix } => ProtoCheck {
                    number: *number,
                    number_cols: if number.is_some() {
                        number_cols.clone()
                    } else {
                        Vec::new()
                    },
                    presence_cols: positions(header, |n| n.starts_with(prefix)),
                },
                Proto::Number(n) => ProtoCheck {
                    number: Some(*n),
                    number_cols: number_cols.clone(),
                    presence_cols: Vec::new(),
                },
            })
            .collect();
        push(Cond::Proto(checks))?;
    }
    if (rule.ts_from.is_some() || rule.ts_until.is_some()) && is_flow {
        let first_col = header.iter().position(|n| n == FLOW_FIRST_SEEN)?;
        let last_col = header.iter().position(|n| n == FLOW_LAST_SEEN)?;
        push(Cond::FlowTime {
            first_col,
            last_col,
            from: rule.ts_from,
            until: rule.ts_until,
        })?;
    } else if rule.ts_from.is_some() || rule.ts_until.is_some() {
        let col = header.iter().position(|n| n == "ts")?;
        push(Cond::Time {
            col,
            from: rule.ts_from,
            until: rule.ts_until,
        })?;
    }
    for (name, values) in &rule.equals {
        let col = header.iter().position(|n| n == name)?;
        push(Cond::Equals {
            col,
            values: values.clone(),
        })?;
    }
    Some(FileRule {
        label: rule.label,
        conds,
    })
}

fn compile(spec: &RuleSpec, label: usize) -> Result<Rule, String> {
    let nets = |list: &[String]| -> Result<Vec<IpNet>, String> {
        list.iter().map(|s| parse_net(s)).collect()
    };
    let ports = |list: &[Scalar]| -> Result<Vec<(u32, u32)>, String> {
        list.iter().map(|s| parse_port_range(&s.text())).collect()
    };
    let time = |t: &Option<String>| -> Result<Option<i128>, String> {
        t.as_deref()
            .map(|s| rfc3339_ns(s).ok_or_else(|| format!("`{s}` is not an RFC 3339 time")))
            .transpose()
    };
    Ok(Rule {
        label,
        src: nets(&spec.src)?,
        dst: nets(&spec.dst)?,
        addr: nets(&spec.addr)?,
        port: ports(&spec.port)?,
        src_port: ports(&spec.src_port)?,
        dst_port: ports(&spec.dst_port)?,
        protocol: spec
            .protocol
            .iter()
            .map(|p| parse_proto(&p.text()))
            .collect::<Result<_, _>>()?,
        ts_from: time(&spec.ts_from)?,
        ts_until: time(&spec.ts_until)?,
        dir: spec.dir.iter().map(PathBuf::from).collect(),
        equals: spec
            .equals
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|s| s.as_bytes().to_vec()).collect()))
            .collect(),
    })
}

fn parse_port_range(text: &str) -> Result<(u32, u32), String> {
    let port = |s: &str| -> Result<u32, String> {
        s.trim()
            .parse::<u16>()
            .map(u32::from)
            .map_err(|_| format!("`{text}` is not a port (0-65535) or range `a-b`"))
    };
    match text.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(format!("port range `{text}` is empty"));
            }
            Ok((lo, hi))
        }
        None => port(text).map(|p| (p, p)),
    }
}

fn parse_proto(text: &str) -> Result<Proto, String> {
    let named = |number, prefix| Ok(Proto::Named { number, prefix });
    match text.to_ascii_lowercase().as_str() {
        "tcp" => named(Some(6), "tcp_"),
        "udp" => named(Some(17), "udp_"),
        "icmp" => named(Some(1), "icmp_"),
        "icmpv6" => named(Some(58), "icmpv6_"),
        "arp" => named(None, "arp_"),
        "dns" => named(None, "dns_"),
        "ip" | "ipv4" => named(None, "ip_"),
        "ipv6" => named(None, "ipv6_"),
        other => other
            .parse::<u8>()
            .map(|n| Proto::Number(u32::from(n)))
            .map_err(|_| {
                format!("unknown protocol `{text}` (tcp, udp, icmp, icmpv6, arp, dns, ipv4, ipv6 or 0-255)")
            }),
    }
}

fn rfc3339_ns(text: &str) -> Option<i128> {
    let t = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?;
    Some(i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos()))
}

/// A `ts` cell as nanoseconds since the epoch: RFC 3339, or a Unix time whose unit is
/// guessed from its size (s, ms, µs or ns).
pub fn cell_time_ns(cell: &[u8]) -> Option<i128> {
    let text = std::str::from_utf8(cell).ok()?.trim();
    if let Some(t) = rfc3339_ns(text) {
        return Some(t);
    }
    if let Ok(int) = text.parse::<i128>() {
        let abs = int.abs();
        return Some(match abs {
            a if a >= 100_000_000_000_000_000 => int,
            a if a >= 100_000_000_000_000 => int * 1_000,
            a if a >= 100_000_000_000 => int * 1_000_000,
            _ => int * 1_000_000_000,
        });
    }
    let float: f64 = text.parse().ok().filter(|f: &f64| f.is_finite())?;
    let abs = float.abs();
    let ns = if abs >= 1e17 {
        float
    } else if abs >= 1e14 {
        float * 1e3
    } else if abs >= 1e11 {
        float * 1e6
    } else {
        float * 1e9
    };
    Some(ns as i128)
}

/// `VALUE:NAME[:KEY=V1,V2;KEY=V]` from the command line, as a [`RuleSpec`].
pub fn parse_flag_rule(text: &str) -> Result<RuleSpec, String> {
    let mut parts = text.splitn(3, ':');
    let value = parts.next().unwrap_or_default().trim();
    let label_value: i64 = value.parse().map_err(|_| {
        format!("label value `{value}` is not an integer (VALUE:NAME[:CONDITIONS])")
    })?;
    let label_name = parts.next().unwrap_or_default().trim().to_string();
    if label_name.is_empty() {
        return Err("missing label name (VALUE:NAME[:CONDITIONS])".into());
    }
    let mut spec = RuleSpec {
        label_value,
        label_name,
        ..RuleSpec::default()
    };
    for cond in parts.next().unwrap_or_default().split(';') {
        let cond = cond.trim();
        if cond.is_empty() {
            continue;
        }
        let (key, values) = cond
            .split_once('=')
            .ok_or_else(|| format!("condition `{cond}` is not KEY=VALUES"))?;
        let list: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        let scalars = || list.iter().cloned().map(Scalar::Text).collect::<Vec<_>>();
        let single = || match list.as_slice() {
            [one] => Ok(Some(one.clone())),
            _ => Err(format!("`{key}` takes exactly one value")),
        };
        match key.trim() {
            "src" => spec.src = list.clone(),
            "dst" => spec.dst = list.clone(),
            "addr" => spec.addr = list.clone(),
            "port" => spec.port = scalars(),
            "src_port" => spec.src_port = scalars(),
            "dst_port" => spec.dst_port = scalars(),
            "protocol" => spec.protocol = scalars(),
            "ts_from" => spec.ts_from = single()?,
            "ts_until" => spec.ts_until = single()?,
            "dir" => spec.dir = list.clone(),
            other => match other.strip_prefix("equals.") {
                Some(column) if !column.is_empty() => {
                    spec.equals.insert(column.to_string(), list.clone());
                }
                _ => {
                    return Err(format!(
                        "unknown condition `{other}` (src, dst, addr, port, src_port, dst_port, \
                         protocol, ts_from, ts_until, dir, equals.COLUMN)"
                    ));
                }
            },
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn record(cells: &[&str]) -> csv::ByteRecord {
        csv::ByteRecord::from(cells.to_vec())
    }

    fn labeler(rules: &[&str]) -> Labeler {
        let specs = rules.iter().map(|r| parse_flag_rule(r).unwrap()).collect();
        Labeler::from_specs(
            specs,
            Label {
                label_value: 0,
                label_name: "not_attack".into(),
            },
            None,
        )
        .unwrap()
    }

    fn name_of(l: &Labeler, i: usize) -> &str {
        &l.labels()[i].label_name
    }

    #[test]
    fn flag_rule_grammar() {
        let spec =
            parse_flag_rule("1:attack:src=10.0.0.0/8, 192.168.0.0/16;dst_port=22,8000-8100;ts_from=2026-01-01T00:00:00Z")
                .unwrap();
        assert_eq!(spec.label_value, 1);
        assert_eq!(spec.label_name, "attack");
        assert_eq!(spec.src, vec!["10.0.0.0/8", "192.168.0.0/16"]);
        assert_eq!(spec.dst_port.len(), 2);
        assert_eq!(spec.ts_from.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert!(parse_flag_rule("x:attack").is_err());
        assert!(parse_flag_rule("1:").is_err());
        assert!(parse_flag_rule("1:a:bogus=1").is_err());
        assert!(parse_flag_rule("1:a:equals.tcp_flags=S,SA").is_ok());
    }

    #[test]
    fn first_match_wins_and_default_applies() {
        let l = labeler(&["2:scan:dst_port=22", "1:attack:src=10.0.0.0/8"]);
        let h = header(&["ip_src", "ip_dst", "tcp_sport", "tcp_dport"]);
        let f = l.for_file(&h, Path::new("/d/x.csv"));
        let both = record(&["10.1.1.1", "10.2.2.2", "40000", "22"]);
        let src_only = record(&["10.1.1.1", "10.2.2.2", "40000", "80"]);
        let neither = record(&["192.168.1.1", "10.2.2.2", "40000", "80"]);
        assert_eq!(name_of(&l, f.label(&both, 0)), "scan");
        assert_eq!(name_of(&l, f.label(&src_only, 0)), "attack");
        assert_eq!(name_of(&l, f.label(&neither, 0)), "not_attack");
        assert_eq!(l.meta().label_values, vec![0, 1, 2]);
    }

    #[test]
    fn protocol_by_number_or_presence() {
        let l = labeler(&["1:icmp:protocol=icmp", "2:udp:protocol=17"]);
        let netpipe = header(&["ip_proto", "icmp_type", "udp_sport"]);
        let f = l.for_file(&netpipe, Path::new("x.csv"));
        assert_eq!(name_of(&l, f.label(&record(&["1", "", ""]), 0)), "icmp");
        assert_eq!(name_of(&l, f.label(&record(&["17", "", "53"]), 0)), "udp");
        assert_eq!(
            name_of(&l, f.label(&record(&["6", "", ""]), 0)),
            "not_attack"
        );
        // The original's files have no ip_proto: presence of an icmp_ value decides.
        let legacy = header(&["icmp_id", "icmp_type"]);
        let f = l.for_file(&legacy, Path::new("x.csv"));
        assert_eq!(name_of(&l, f.label(&record(&["", "8"]), 0)), "icmp");
        assert_eq!(name_of(&l, f.label(&record(&["", ""]), 0)), "not_attack");
    }

    #[test]
    fn time_window_and_directory() {
        let l = labeler(&[
            "1:attack:ts_from=2026-01-01T00:00:00Z;ts_until=2026-01-02T00:00:00Z;dir=django",
        ]);
        let h = header(&["ts"]);
        let inside = record(&["2026-01-01T12:00:00.5Z"]);
        let after = record(&["2026-01-02T00:00:00Z"]);
        let f = l.for_file(&h, Path::new("/data/django/a.csv"));
        assert_eq!(name_of(&l, f.label(&inside, 0)), "attack");
        assert_eq!(name_of(&l, f.label(&after, 0)), "not_attack");
        let epoch_ns = record(&["1767268800000000000"]);
        assert_eq!(name_of(&l, f.label(&epoch_ns, 0)), "attack");
        let other_dir = l.for_file(&h, Path::new("/data/flask/a.csv"));
        assert_eq!(name_of(&l, other_dir.label(&inside, 0)), "not_attack");
        // A file without `ts` cannot match a time rule.
        let no_ts = l.for_file(&header(&["x"]), Path::new("/data/django/a.csv"));
        assert_eq!(name_of(&l, no_ts.label(&record(&["1"]), 0)), "not_attack");
    }

    #[test]
    fn flow_rows_match_by_address_port_protocol_and_overlap() {
        let l = labeler(&[
            "3:window:ts_from=2026-01-01T00:00:10Z;ts_until=2026-01-01T00:00:20Z",
            "2:ssh:dst_port=22;protocol=tcp",
            "1:v6:protocol=ipv6",
            "4:src:src=10.66.0.0/16;src_port=5000-5010",
        ]);
        let h = header(&[
            "src_ip",
            "src_port",
            "dst_ip",
            "dst_port",
            "protocol",
            "ip_version",
            "bidirectional_first_seen_ms",
            "bidirectional_last_seen_ms",
        ]);
        let f = l.for_file(&h, Path::new("flows.csv"));
        let t0 = 1_767_225_600_000_i64; // 2026-01-01T00:00:00Z in ms
        let flow = |src: &str, sport: &str, dport: &str, proto: &str, v: &str, a: i64, b: i64| {
            let (a, b) = ((t0 + a).to_string(), (t0 + b).to_string());
            let r = record(&[src, sport, "10.0.0.9", dport, proto, v, &a, &b]);
            name_of(&l, f.label(&r, 0)).to_string()
        };
        // Overlap: starts before the window and ends inside it, or starts inside it.
        assert_eq!(
            flow("1.1.1.1", "1", "80", "6", "4", 5_000, 10_000),
            "window"
        );
        assert_eq!(
            flow("1.1.1.1", "1", "80", "6", "4", 19_999, 40_000),
            "window"
        );
        // Ends just before the window, starts at its (exclusive) end.
        assert_eq!(flow("1.1.1.1", "1", "80", "6", "4", 0, 9_999), "not_attack");
        assert_eq!(
            flow("1.1.1.1", "1", "80", "6", "4", 20_000, 30_000),
            "not_attack"
        );
        assert_eq!(flow("1.1.1.1", "1", "22", "6", "4", 0, 1), "ssh");
        assert_eq!(flow("1.1.1.1", "1", "22", "17", "4", 0, 1), "not_attack");
        assert_eq!(flow("::1", "1", "53", "17", "6", 0, 1), "v6");
        assert_eq!(flow("10.66.3.4", "5005", "53", "17", "4", 0, 1), "src");
        assert_eq!(
            flow("10.66.3.4", "5011", "53", "17", "4", 0, 1),
            "not_attack"
        );
        // A packet-style `ip_` presence never stands for IPv4 on flows (ip_version is set on
        // every flow).
        let v4 = labeler(&["1:v4:protocol=ipv4"]);
        let f4 = v4.for_file(&h, Path::new("flows.csv"));
        let r = record(&["::1", "1", "::2", "2", "17", "6", "0", "0"]);
        assert_eq!(name_of(&v4, f4.label(&r, 0)), "not_attack");
    }

    #[test]
    fn conflicting_label_names_are_refused() {
        let specs = vec![parse_flag_rule("0:benign:port=1").unwrap()];
        let default = Label {
            label_value: 0,
            label_name: "not_attack".into(),
        };
        assert!(Labeler::from_specs(specs, default, None).is_err());
    }

    #[test]
    fn documented_example_rules_file_is_valid() {
        let text = include_str!("../../../docs/label-rules.example.json");
        let file: RulesFile = serde_json::from_str(text).unwrap();
        let default = file.default.clone().unwrap();
        let l = Labeler::from_specs(file.rules, default, None).unwrap();
        assert_eq!(l.meta().labels, ["not_attack", "attack", "syn_probe"]);
        let h = header(&["ts", "ip_src", "ip_proto", "tcp_dport", "tcp_flags"]);
        let f = l.for_file(&h, Path::new("/data/agent-1/a.csv"));
        let row = |src: &str, ts: &str, dport: &str, flags: &str| {
            let r = record(&[ts, src, "6", dport, flags]);
            name_of(&l, f.label(&r, 0)).to_string()
        };
        assert_eq!(
            row("10.66.1.2", "2026-02-01T00:00:00Z", "22", "16"),
            "attack"
        );
        assert_eq!(
            row("10.1.1.2", "2026-01-01T09:30:00Z", "8080", "2"),
            "attack"
        );
        assert_eq!(
            row("10.1.1.2", "2026-01-01T11:00:00Z", "8080", "2"),
            "syn_probe"
        );
        assert_eq!(
            row("10.1.1.2", "2026-01-01T11:00:00Z", "8080", "16"),
            "not_attack"
        );
    }

    #[test]
    fn documented_flow_rules_file_is_valid() {
        let text = include_str!("../../../docs/label-rules.flows.example.json");
        let file: RulesFile = serde_json::from_str(text).unwrap();
        let default = file.default.clone().unwrap();
        let l = Labeler::from_specs(file.rules, default, None).unwrap();
        assert_eq!(
            l.meta().labels,
            ["benign", "attack", "evicted", "syn_probe"]
        );
        let h = header(&[
            "src_ip",
            "dst_port",
            "protocol",
            "bidirectional_first_seen_ms",
            "bidirectional_last_seen_ms",
            "bidirectional_packets",
            "bidirectional_syn_packets",
            "expiration_reason",
        ]);
        let f = l.for_file(&h, Path::new("/data/netdata-flows-x.csv"));
        // 2026-01-01T09:00:00Z = 1767258000000 ms.
        let row = |src: &str, dport: &str, first: i64, last: i64, packets: &str, why: &str| {
            let (first, last) = (first.to_string(), last.to_string());
            let r = record(&[src, dport, "6", &first, &last, packets, "1", why]);
            name_of(&l, f.label(&r, 0)).to_string()
        };
        let nine = 1_767_258_000_000_i64;
        assert_eq!(row("10.66.0.9", "443", 0, 1, "5", "idle"), "attack");
        // Started before the window, still running in it: overlaps.
        assert_eq!(
            row("10.1.1.2", "8080", nine - 60_000, nine + 5, "9", "idle"),
            "attack"
        );
        assert_eq!(
            row("10.1.1.2", "8080", nine - 60_000, nine - 1, "9", "idle"),
            "benign"
        );
        assert_eq!(row("10.1.1.2", "80", 0, 1, "9", "evicted"), "evicted");
        assert_eq!(row("10.1.1.2", "80", 0, 0, "1", "idle"), "syn_probe");
        assert_eq!(row("10.1.1.2", "80", 0, 0, "2", "idle"), "benign");
    }

    #[test]
    fn rules_file_rejects_unknown_keys() {
        let bad = r#"{"rules":[{"label_value":1,"label_name":"a","sourc":["1.2.3.4"]}]}"#;
        assert!(serde_json::from_str::<RulesFile>(bad).is_err());
        let good = r#"{"default":{"label_value":0,"label_name":"n"},
            "rules":[{"label_value":1,"label_name":"a","port":[8080,"9000-9100"],"protocol":["tcp",17]}]}"#;
        let file: RulesFile = serde_json::from_str(good).unwrap();
        assert_eq!(
            file.rules[0].port,
            vec![Scalar::Number(8080), Scalar::Text("9000-9100".into())]
        );
    }
}
