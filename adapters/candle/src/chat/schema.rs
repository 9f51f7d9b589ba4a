//! JSON Schema for constrained decoding: [`Schema`] compiles the parts of a schema that decide
//! which bytes may come next, and [`Guide`] walks a document byte by byte on top of the JSON
//! recogniser, refusing any byte that would leave the schema.
//!
//! Enforced: `type` (one or several), `enum` and `const` of scalars, `properties`, `required`,
//! `additionalProperties` (false, true or a schema), `items`, `minItems`, `maxItems`, local
//! `$ref` (`#/$defs/...`, `#/definitions/...`, recursion included), `anyOf` / `oneOf` whose
//! alternatives differ in type (as `Optional[...]` fields are written), and a one-element
//! `allOf`. Not enforced (the schema still goes into the prompt): string `pattern`, `format`
//! and lengths, numeric ranges, `uniqueItems`, and other keywords that constrain values rather
//! than structure. A schema that cannot be enforced faithfully (two object alternatives, an
//! enum of objects, more than 64 properties on one object) is refused with the reason.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::json::{ByteMachine, JsonState, Mode, number_step};

const T_OBJECT: u8 = 1;
const T_ARRAY: u8 = 2;
const T_STRING: u8 = 4;
const T_NUMBER: u8 = 8;
const T_INTEGER: u8 = 16;
const T_BOOLEAN: u8 = 32;
const T_NULL: u8 = 64;
const T_ANY: u8 = 127;

/// Most properties one object may declare (they are tracked in a 64-bit set).
const MAX_PROPS: usize = 64;
/// Most literal values one `enum` may list.
const MAX_VALUES: usize = 64;
/// Deepest nesting of objects and arrays in a document generated under a schema.
const MAX_FRAMES: usize = 16;
/// Deepest nesting of the schema itself while compiling.
const MAX_SCHEMA_DEPTH: usize = 64;

/// One compiled schema node.
#[derive(Debug, Clone)]
struct Node {
    /// Types a value may take freely.
    types: u8,
    /// Literal values allowed besides `types` (enum / const), serialized.
    values: Vec<Vec<u8>>,
    /// Declared properties: the key as it appears between the quotes, and its schema.
    props: Vec<(Vec<u8>, u32)>,
    /// Bit `i`: `props[i]` is required.
    required: u64,
    /// Schema of undeclared keys' values; `None`: undeclared keys are refused.
    additional: Option<u32>,
    /// Schema of array items.
    items: u32,
    min_items: u32,
    max_items: u32,
}

impl Node {
    fn any() -> Self {
        Node {
            types: T_ANY,
            values: Vec::new(),
            props: Vec::new(),
            required: 0,
            additional: Some(ANY),
            items: ANY,
            min_items: 0,
            max_items: u32::MAX,
        }
    }

    fn empty() -> Self {
        Node {
            types: 0,
            ..Node::any()
        }
    }
}

/// Node 0 accepts any value.
const ANY: u32 = 0;

/// A compiled JSON Schema (see the module docs for what is enforced).
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    nodes: Vec<Node>,
    root: u32,
}

impl Schema {
    /// Compiles `schema`; the error names what cannot be enforced and where.
    pub(crate) fn compile(schema: &Value) -> Result<Self, String> {
        Self::compile_with(schema, false)
    }

    /// Compiles a tool's parameter schema: as [`Schema::compile`], except that an object
    /// without `additionalProperties` takes only its declared properties (a call's arguments
    /// are the parameters the tool declares; a small model otherwise invents more).
    pub(crate) fn compile_parameters(schema: &Value) -> Result<Self, String> {
        Self::compile_with(schema, true)
    }

    fn compile_with(schema: &Value, closed: bool) -> Result<Self, String> {
        let mut c = Compiler {
            closed,
            doc: schema,
            nodes: vec![Node::any()],
            refs: HashMap::new(),
        };
        let root = c.node(schema, "#", 0)?;
        if c.nodes[root as usize].types & T_OBJECT == 0 {
            return Err("the top-level schema must allow an object".into());
        }
        Ok(Schema {
            nodes: c.nodes,
            root,
        })
    }

    fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }
}

struct Compiler<'a> {
    /// Objects without `additionalProperties` are closed.
    closed: bool,
    doc: &'a Value,
    nodes: Vec<Node>,
    refs: HashMap<String, u32>,
}

fn type_bit(name: &str, at: &str) -> Result<u8, String> {
    Ok(match name {
        "object" => T_OBJECT,
        "array" => T_ARRAY,
        "string" => T_STRING,
        "number" => T_NUMBER | T_INTEGER,
        "integer" => T_INTEGER,
        "boolean" => T_BOOLEAN,
        "null" => T_NULL,
        other => return Err(format!("{at}/type: unknown type {other:?}")),
    })
}

impl Compiler<'_> {
    fn node(&mut self, v: &Value, at: &str, depth: usize) -> Result<u32, String> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(format!("{at}: the schema nests too deep"));
        }
        let o = match v {
            Value::Bool(true) => return Ok(ANY),
            Value::Bool(false) => return Err(format!("{at}: a false schema accepts nothing")),
            Value::Object(o) => o,
            _ => return Err(format!("{at}: a schema must be an object or a boolean")),
        };
        if let Some(r) = o.get("$ref") {
            let r = r
                .as_str()
                .ok_or_else(|| format!("{at}/$ref: must be a string"))?;
            if let Some(&id) = self.refs.get(r) {
                return Ok(id);
            }
            let target = r
                .strip_prefix('#')
                .and_then(|p| self.doc.pointer(p))
                .ok_or_else(|| format!("{at}/$ref: {r:?} is not a local reference"))?;
            let id = self.nodes.len() as u32;
            self.nodes.push(Node::any());
            self.refs.insert(r.to_owned(), id);
            let built = match target {
                Value::Object(t) => self.build(t, r, depth + 1)?,
                other => {
                    let inner = self.node(other, r, depth + 1)?;
                    self.nodes[inner as usize].clone()
                }
            };
            self.nodes[id as usize] = built;
            return Ok(id);
        }
        let built = self.build(o, at, depth)?;
        self.nodes.push(built);
        Ok(self.nodes.len() as u32 - 1)
    }

    fn build(&mut self, o: &Map<String, Value>, at: &str, depth: usize) -> Result<Node, String> {
        if let Some(all) = o.get("allOf") {
            match all.as_array().map(Vec::as_slice) {
                Some([one]) => {
                    let id = self.node(one, &format!("{at}/allOf/0"), depth + 1)?;
                    return Ok(self.nodes[id as usize].clone());
                }
                _ => return Err(format!("{at}/allOf: only a single schema is supported")),
            }
        }
        let mut n = Node::empty();
        let mut typed = false;
        match o.get("type") {
            Some(Value::String(t)) => {
                n.types = type_bit(t, at)?;
                typed = true;
            }
            Some(Value::Array(ts)) => {
                for t in ts {
                    let t = t
                        .as_str()
                        .ok_or_else(|| format!("{at}/type: entries must be strings"))?;
                    n.types |= type_bit(t, at)?;
                }
                typed = true;
            }
            Some(_) => return Err(format!("{at}/type: must be a string or a list")),
            None => {}
        }
        let literals = match (o.get("enum"), o.get("const")) {
            (Some(Value::Array(vs)), _) => Some(vs.clone()),
            (Some(_), _) => return Err(format!("{at}/enum: must be a list")),
            (None, Some(c)) => Some(vec![c.clone()]),
            (None, None) => None,
        };
        if let Some(vs) = literals {
            if vs.len() > MAX_VALUES {
                return Err(format!("{at}/enum: more than {MAX_VALUES} values"));
            }
            for v in &vs {
                if v.is_object() || v.is_array() {
                    return Err(format!("{at}/enum: objects and lists are not supported"));
                }
                n.values
                    .push(serde_json::to_vec(v).map_err(|e| e.to_string())?);
            }
            // The literals decide; a `type` beside them only repeats them.
            n.types = 0;
            return Ok(n);
        }
        for key in ["anyOf", "oneOf"] {
            let Some(alts) = o.get(key) else { continue };
            let alts = alts
                .as_array()
                .ok_or_else(|| format!("{at}/{key}: must be a list"))?;
            for (i, alt) in alts.iter().enumerate() {
                let id = self.node(alt, &format!("{at}/{key}/{i}"), depth + 1)?;
                let a = self.nodes[id as usize].clone();
                let shared = n.types & a.types;
                if shared & (T_OBJECT | T_ARRAY) != 0 {
                    return Err(format!(
                        "{at}/{key}: two alternatives that are both objects or both lists are \
                         not supported"
                    ));
                }
                if a.types & T_OBJECT != 0 {
                    n.props = a.props;
                    n.required = a.required;
                    n.additional = a.additional;
                }
                if a.types & T_ARRAY != 0 {
                    n.items = a.items;
                    n.min_items = a.min_items;
                    n.max_items = a.max_items;
                }
                n.types |= a.types;
                n.values.extend(a.values);
            }
            return Ok(n);
        }
        if let Some(props) = o.get("properties") {
            let props = props
                .as_object()
                .ok_or_else(|| format!("{at}/properties: must be an object"))?;
            if props.len() > MAX_PROPS {
                return Err(format!(
                    "{at}/properties: more than {MAX_PROPS} properties on one object"
                ));
            }
            for (k, v) in props {
                let id = self.node(v, &format!("{at}/properties/{k}"), depth + 1)?;
                let quoted = serde_json::to_vec(k).map_err(|e| e.to_string())?;
                n.props.push((quoted[1..quoted.len() - 1].to_vec(), id));
            }
        }
        if let Some(req) = o.get("required") {
            let req = req
                .as_array()
                .ok_or_else(|| format!("{at}/required: must be a list"))?;
            for r in req {
                let name = r
                    .as_str()
                    .ok_or_else(|| format!("{at}/required: entries must be strings"))?;
                let quoted = serde_json::to_vec(name).map_err(|e| e.to_string())?;
                let i = n
                    .props
                    .iter()
                    .position(|(k, _)| k[..] == quoted[1..quoted.len() - 1])
                    .ok_or_else(|| {
                        format!("{at}/required: {name:?} is not among the properties")
                    })?;
                n.required |= 1 << i;
            }
        }
        match o.get("additionalProperties") {
            None if self.closed && o.contains_key("properties") => n.additional = None,
            None | Some(Value::Bool(true)) => n.additional = Some(ANY),
            Some(Value::Bool(false)) => n.additional = None,
            Some(s) => {
                n.additional =
                    Some(self.node(s, &format!("{at}/additionalProperties"), depth + 1)?)
            }
        }
        if let Some(items) = o.get("items") {
            n.items = self.node(items, &format!("{at}/items"), depth + 1)?;
        }
        if o.contains_key("prefixItems") {
            return Err(format!("{at}/prefixItems: not supported"));
        }
        let count = |k: &str| -> Result<Option<u32>, String> {
            match o.get(k) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(|v| Some(v.min(u64::from(u32::MAX)) as u32))
                    .ok_or_else(|| format!("{at}/{k}: must be a whole number")),
            }
        };
        if let Some(v) = count("minItems")? {
            n.min_items = v;
        }
        if let Some(v) = count("maxItems")? {
            n.max_items = v;
        }
        if n.min_items > n.max_items {
            return Err(format!("{at}: minItems is above maxItems"));
        }
        if !typed {
            let object = ["properties", "required", "additionalProperties"]
                .iter()
                .any(|k| o.contains_key(*k));
            let array = ["items", "minItems", "maxItems"]
                .iter()
                .any(|k| o.contains_key(*k));
            n.types = match (object, array) {
                (true, false) => T_OBJECT,
                (false, true) => T_ARRAY,
                (true, true) => T_OBJECT | T_ARRAY,
                (false, false) => T_ANY,
            };
        }
        Ok(n)
    }
}

/// One open object or array.
#[derive(Debug, Clone, Copy, Default)]
struct Frame {
    node: u32,
    /// Objects: the declared properties already present.
    used: u64,
    /// Arrays: items started so far.
    count: u32,
    object: bool,
}

/// What the candidate set tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Track {
    None,
    /// The value in progress must be one of the node's literal values.
    Literal(u32),
    /// The key in progress is matched against the open object's properties; `free` when
    /// undeclared keys are allowed too.
    Key {
        free: bool,
    },
}

/// The JSON recogniser plus a schema: accepts exactly the byte strings that are a prefix of a
/// JSON object valid against the schema (for what the schema enforces). `Copy`, like
/// [`JsonState`], so testing a candidate token is cheap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guide<'a> {
    schema: &'a Schema,
    json: JsonState,
    frames: [Frame; MAX_FRAMES],
    depth: u8,
    /// Schema of the value that comes next or is in progress.
    next: u32,
    track: Track,
    /// Candidates still matching (bit per literal value or property) and bytes matched.
    cand: u64,
    pos: u16,
    /// The number in progress must be an integer.
    integer: bool,
}

fn type_of_first_byte(b: u8) -> Option<u8> {
    Some(match b {
        b'{' => T_OBJECT,
        b'[' => T_ARRAY,
        b'"' => T_STRING,
        b'-' | b'0'..=b'9' => T_NUMBER,
        b't' | b'f' => T_BOOLEAN,
        b'n' => T_NULL,
        _ => return None,
    })
}

impl<'a> Guide<'a> {
    /// Before any byte of a document for `schema`.
    pub(crate) fn new(schema: &'a Schema) -> Self {
        Guide {
            schema,
            json: JsonState::new(),
            frames: [Frame::default(); MAX_FRAMES],
            depth: 0,
            next: schema.root,
            track: Track::None,
            cand: 0,
            pos: 0,
            integer: false,
        }
    }

    fn top(&mut self) -> Option<&mut Frame> {
        self.depth
            .checked_sub(1)
            .map(|d| &mut self.frames[d as usize])
    }

    fn literal_byte(&mut self, b: u8) -> bool {
        let Track::Literal(node) = self.track else {
            return true;
        };
        let values = &self.schema.node(node).values;
        let pos = self.pos as usize;
        for (i, v) in values.iter().enumerate() {
            if v.get(pos) != Some(&b) {
                self.cand &= !(1 << i);
            }
        }
        self.pos += 1;
        self.cand != 0
    }

    fn literal_end(&mut self) -> bool {
        let Track::Literal(node) = self.track else {
            return true;
        };
        self.track = Track::None;
        let values = &self.schema.node(node).values;
        let pos = self.pos as usize;
        values
            .iter()
            .enumerate()
            .any(|(i, v)| self.cand & (1 << i) != 0 && v.len() == pos)
    }

    fn value_start(&mut self, b: u8) -> bool {
        let Some(ty) = type_of_first_byte(b) else {
            return false;
        };
        if let Some(f) = self.top().copied()
            && !f.object
        {
            let max = self.schema.node(f.node).max_items;
            let f = self.top().expect("an open array");
            f.count += 1;
            if f.count > max {
                return false;
            }
        }
        let id = self.next;
        let node = self.schema.node(id);
        let free = if ty == T_NUMBER {
            node.types & (T_NUMBER | T_INTEGER)
        } else {
            node.types & ty
        };
        self.track = Track::None;
        self.integer = false;
        if free != 0 {
            match ty {
                T_NUMBER => self.integer = node.types & T_NUMBER == 0,
                T_OBJECT | T_ARRAY => {
                    if self.depth as usize >= MAX_FRAMES {
                        return false;
                    }
                    self.frames[self.depth as usize] = Frame {
                        node: id,
                        used: 0,
                        count: 0,
                        object: ty == T_OBJECT,
                    };
                    self.depth += 1;
                    if ty == T_ARRAY {
                        self.next = node.items;
                    }
                }
                _ => {}
            }
            return true;
        }
        self.cand = node
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.first() == Some(&b))
            .fold(0, |m, (i, _)| m | 1 << i);
        self.pos = 1;
        self.track = Track::Literal(id);
        self.cand != 0
    }

    /// Closes the innermost container with `b` (`}` or `]`) if the schema allows it here.
    fn close(&mut self, b: u8) -> bool {
        let Some(f) = self.top().copied() else {
            return false;
        };
        let node = self.schema.node(f.node);
        let ok = if f.object {
            b == b'}' && node.required & !f.used == 0
        } else {
            b == b']' && f.count >= node.min_items
        };
        if !ok {
            return false;
        }
        self.depth -= 1;
        if let Some(parent) = self.top().copied()
            && !parent.object
        {
            self.next = self.schema.node(parent.node).items;
        }
        true
    }

    /// A comma in the innermost container: another key or item must be possible.
    fn comma(&mut self) -> bool {
        let Some(f) = self.top().copied() else {
            return false;
        };
        let node = self.schema.node(f.node);
        if f.object {
            let all = if node.props.len() == 64 {
                u64::MAX
            } else {
                (1u64 << node.props.len()) - 1
            };
            node.additional.is_some() || all & !f.used != 0
        } else {
            f.count < node.max_items
        }
    }

    fn key_start(&mut self) -> bool {
        let Some(f) = self.top().copied() else {
            return false;
        };
        let node = self.schema.node(f.node);
        let all = if node.props.len() == 64 {
            u64::MAX
        } else {
            (1u64 << node.props.len()) - 1
        };
        self.cand = all & !f.used;
        self.pos = 0;
        let free = node.additional.is_some();
        self.track = Track::Key { free };
        free || self.cand != 0
    }

    fn key_byte(&mut self, b: u8, ended: bool) -> bool {
        let Track::Key { free } = self.track else {
            return false;
        };
        let Some(f) = self.top().copied() else {
            return false;
        };
        let node = self.schema.node(f.node);
        let pos = self.pos as usize;
        if ended {
            self.track = Track::None;
            let hit = node
                .props
                .iter()
                .enumerate()
                .find(|(i, (k, _))| self.cand & (1 << i) != 0 && k.len() == pos);
            return match (hit, node.additional) {
                (Some((i, (_, id))), _) => {
                    self.next = *id;
                    self.top().expect("an open object").used |= 1 << i;
                    true
                }
                (None, Some(extra)) => {
                    self.next = extra;
                    true
                }
                (None, None) => false,
            };
        }
        for (i, (k, _)) in node.props.iter().enumerate() {
            if k.get(pos) != Some(&b) {
                self.cand &= !(1 << i);
            }
        }
        self.pos += 1;
        free || self.cand != 0
    }

    /// Feeds one byte; `false` (and the state unspecified) when the byte cannot follow.
    pub(crate) fn step(&mut self, b: u8) -> bool {
        let before = self.json.mode();
        if let Mode::Number(n) = before {
            if number_step(n, b).is_some() {
                if self.integer && matches!(b, b'.' | b'e' | b'E') {
                    return false;
                }
                return self.literal_byte(b) && self.json.step(b);
            }
            // The number ends here; `b` belongs to what follows.
            if !self.literal_end() {
                return false;
            }
        }
        match before {
            Mode::Str { key, .. } => {
                if !self.json.step(b) {
                    return false;
                }
                let ended = !matches!(self.json.mode(), Mode::Str { .. });
                if key {
                    return self.key_byte(b, ended);
                }
                return self.literal_byte(b) && (!ended || self.literal_end());
            }
            Mode::Lit { .. } => {
                if !self.json.step(b) || !self.literal_byte(b) {
                    return false;
                }
                return matches!(self.json.mode(), Mode::Lit { .. }) || self.literal_end();
            }
            _ => {}
        }
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            return self.json.step(b);
        }
        let mode = match before {
            Mode::Number(_) => Mode::After,
            m => m,
        };
        let ok = match mode {
            Mode::Start => self.value_start(b),
            Mode::Value { first } => {
                if first && b == b']' {
                    self.close(b)
                } else {
                    self.value_start(b)
                }
            }
            Mode::KeyOrEnd | Mode::Key => match b {
                b'"' => self.key_start(),
                b'}' if mode == Mode::KeyOrEnd => self.close(b),
                _ => false,
            },
            Mode::Colon => true,
            Mode::After => match b {
                b',' => self.comma(),
                b'}' | b']' => self.close(b),
                _ => false,
            },
            _ => false,
        };
        ok && self.json.step(b)
    }

    /// Whether the document is complete.
    pub(crate) fn is_done(&self) -> bool {
        self.json.is_done()
    }
}

impl ByteMachine for Guide<'_> {
    fn step(&mut self, b: u8) -> bool {
        Guide::step(self, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> Schema {
        Schema::compile(&v).unwrap()
    }

    fn accepts(s: &Schema, text: &str) -> bool {
        let mut g = Guide::new(s);
        g.feed(text.as_bytes())
    }

    fn complete(s: &Schema, text: &str) -> bool {
        let mut g = Guide::new(s);
        g.feed(text.as_bytes()) && g.is_done()
    }

    impl Guide<'_> {
        fn feed(&mut self, bytes: &[u8]) -> bool {
            bytes.iter().all(|&b| self.step(b))
        }
    }

    fn product() -> Schema {
        schema(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "price": {"type": "integer"},
                "colour": {"enum": ["red", "green", null]},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "stock": {"anyOf": [{"type": "number"}, {"type": "null"}]},
                "seller": {"$ref": "#/$defs/seller"}
            },
            "required": ["name", "price"],
            "additionalProperties": false,
            "$defs": {"seller": {"type": "object", "properties": {"id": {"type": "string"}},
                                 "required": ["id"], "additionalProperties": false}}
        }))
    }

    #[test]
    fn valid_documents_and_every_prefix_are_accepted() {
        let s = product();
        let docs = [
            r#"{"name": "Tea", "price": 12}"#,
            r#"{"price": -3, "name": "T\"ea", "colour": "green", "tags": ["a", "b"]}"#,
            r#"{"name":"x","price":0,"colour":null,"stock":2.5,"seller":{"id":"s1"}}"#,
            r#"{"name":"x","price":1,"stock":null,"tags":[]}"#,
        ];
        for d in docs {
            assert!(complete(&s, d), "{d}");
            for i in 0..d.len() {
                assert!(accepts(&s, &d[..i]), "prefix {i} of {d}");
            }
        }
    }

    #[test]
    fn documents_outside_the_schema_are_refused_at_the_first_wrong_byte() {
        let s = product();
        for (d, why) in [
            (r#"{"name": 1"#, "a number for a string"),
            (r#"{"name": "a", "price": 1.5"#, "a fraction for an integer"),
            (
                r#"{"name": "a", "price": 1e3"#,
                "an exponent for an integer",
            ),
            (r#"{"nam": 1"#, "an unknown key"),
            (r#"{"name": "a", "name""#, "a repeated key"),
            (r#"{"name": "a"}"#, "a missing required key"),
            (
                r#"{"name": "a", "price": 1, "colour": "blue""#,
                "a value outside the enum",
            ),
            (
                r#"{"name": "a", "price": 1, "colour": "re""#,
                "a prefix of an enum value",
            ),
            (
                r#"{"name": "a", "price": 1, "tags": ["a", "b", "#,
                "too many items",
            ),
            (
                r#"{"name": "a", "price": 1, "stock": "x""#,
                "a string for number-or-null",
            ),
            (
                r#"{"name": "a", "price": 1, "seller": {}"#,
                "a nested required key",
            ),
            (r#"["#, "a list at the top"),
        ] {
            assert!(!accepts(&s, d), "{why}: {d}");
        }
    }

    #[test]
    fn free_keys_and_any_values_when_the_schema_allows_them() {
        let s = schema(json!({"type": "object", "properties": {"a": {"type": "boolean"}}}));
        assert!(complete(
            &s,
            r#"{"a": true, "b": [1, {"c": null}], "d": "e"}"#
        ));
        assert!(!accepts(&s, r#"{"a": 1"#));
        let s = schema(json!({"type": "object", "additionalProperties": {"type": "integer"}}));
        assert!(complete(&s, r#"{"x": 1, "y": 2}"#));
        assert!(!accepts(&s, r#"{"x": "1""#));
    }

    #[test]
    fn tool_parameters_are_closed_unless_they_say_otherwise() {
        let v = json!({"type": "object", "properties": {"id": {"type": "string"}}});
        let open = schema(v.clone());
        let closed = Schema::compile_parameters(&v).unwrap();
        assert!(complete(&open, r#"{"id": "1", "x": 2}"#));
        assert!(!accepts(&closed, r#"{"id": "1", "x""#));
        assert!(complete(&closed, r#"{"id": "1"}"#));
    }

    #[test]
    fn recursive_references_compile_and_hold() {
        let s = schema(json!({
            "$ref": "#/$defs/node",
            "$defs": {"node": {"type": "object", "properties": {
                "v": {"type": "integer"},
                "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                "required": ["v"], "additionalProperties": false}}
        }));
        assert!(complete(
            &s,
            r#"{"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}]}"#
        ));
        assert!(!accepts(&s, r#"{"v": 1, "kids": [{"w""#));
    }

    #[test]
    fn unsupported_schemas_are_refused_with_the_place() {
        for (v, needle) in [
            (json!({"type": "array"}), "top-level"),
            (
                json!({"type": "object", "properties": {"a": {"enum": [{"x": 1}]}}}),
                "/properties/a/enum",
            ),
            (
                json!({"type": "object", "required": ["b"], "properties": {}}),
                "\"b\"",
            ),
            (
                json!({"type": "object", "properties": {"a": {"$ref": "https://x/y"}}}),
                "local",
            ),
            (
                json!({"anyOf": [{"type": "object"}, {"type": "object"}]}),
                "anyOf",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "text"}}}),
                "unknown type",
            ),
        ] {
            let e = Schema::compile(&v).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }
}
