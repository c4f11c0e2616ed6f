//! What the form decoder and the XML encoder need to know of a model's
//! shapes: generated per service (`<service>::SCHEMA`).

/// How requests are keyed and answers wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// STS, IAM: `Name.member.N` lists, `<OpResult>` wrappers, `<ErrorResponse>`.
    Query,
    /// EC2: `Name.N` lists, `<requestId>` first, `<Response><Errors>`.
    Ec2,
}

/// A structure member.
#[derive(Debug)]
pub struct Member {
    /// The model's member name (the generated type's serde name).
    pub name: &'static str,
    pub shape: &'static str,
    /// `locationName`: the XML element name (EC2: also the request key, capitalised).
    pub location_name: Option<&'static str>,
    /// `queryName`: EC2's request key when it differs.
    pub query_name: Option<&'static str>,
    /// `flattened` on the member reference.
    pub flattened: bool,
    pub required: bool,
}

#[derive(Debug)]
pub enum Shape {
    Structure(&'static [Member]),
    List {
        member: &'static str,
        /// The element name of each item (`member` when absent; EC2 says `item`).
        member_name: Option<&'static str>,
        flattened: bool,
    },
    Map {
        key: &'static str,
        value: &'static str,
        key_name: Option<&'static str>,
        value_name: Option<&'static str>,
        flattened: bool,
    },
    String,
    Integer,
    Long,
    Boolean,
    Double,
    Timestamp,
    Blob,
}

/// One service's shapes, sorted by name.
#[derive(Debug)]
pub struct Schema {
    pub protocol: Protocol,
    /// The answers' `xmlns`.
    pub namespace: &'static str,
    pub shapes: &'static [(&'static str, Shape)],
}

impl Schema {
    /// The shape called `name`; the generator only refers to shapes it emitted.
    pub fn shape(&self, name: &str) -> &'static Shape {
        let i = self
            .shapes
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .unwrap_or_else(|_| panic!("shape {name} is not in the schema"));
        &self.shapes[i].1
    }
}

impl Member {
    /// Whether the member's value is a flattened list or map.
    pub fn flattened(&self, schema: &Schema) -> bool {
        self.flattened
            || matches!(
                schema.shape(self.shape),
                Shape::List {
                    flattened: true,
                    ..
                } | Shape::Map {
                    flattened: true,
                    ..
                }
            )
    }

    /// The member's XML element (query: also its request key): a flattened
    /// list whose items are named repeats that name, else `locationName`,
    /// else the member name.
    pub fn element(&self, schema: &Schema) -> &'static str {
        if self.flattened(schema) {
            if let Shape::List {
                member_name: Some(n),
                ..
            } = schema.shape(self.shape)
            {
                return n;
            }
        }
        self.location_name.unwrap_or(self.name)
    }

    /// The member's request key: EC2 takes `queryName`, else the capitalised
    /// `locationName`, else the member name; query takes the element name.
    pub fn key(&self, schema: &Schema) -> String {
        match schema.protocol {
            Protocol::Query => self.element(schema).to_string(),
            Protocol::Ec2 => match (self.query_name, self.location_name) {
                (Some(q), _) => q.to_string(),
                (None, Some(l)) => {
                    let mut c = l.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default()
                }
                (None, None) => self.name.to_string(),
            },
        }
    }
}
