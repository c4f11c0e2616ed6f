//! The extract as the generator reads it (`model/<service>.json`). Only what
//! the generator needs is typed; everything else in the extract is ignored.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extract {
    pub botocore_version: String,
    pub service: String,
    pub metadata: Metadata,
    pub operations: BTreeMap<String, Operation>,
    pub shapes: BTreeMap<String, Shape>,
    /// Query and EC2 services: the model's operations berth does not serve.
    #[serde(default)]
    pub unserved_operations: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub api_version: String,
    pub endpoint_prefix: String,
    pub service_id: String,
    pub signing_name: Option<String>,
    /// AWS JSON services only: `X-Amz-Target` prefix.
    pub target_prefix: Option<String>,
    /// `json`, `query` or `ec2`.
    pub protocol: String,
    /// Query and EC2 services: the responses' XML namespace.
    pub xml_namespace: Option<String>,
    /// AWS JSON's version: `1.0` or `1.1` (the content type's suffix).
    pub json_version: Option<String>,
    /// Present when the service moved from the query protocol and still
    /// tells clients the query error code (`x-amzn-query-error`).
    pub aws_query_compatible: Option<serde_json::Value>,
}

impl Metadata {
    /// Whether requests are form-encoded and answered in XML (`query`, `ec2`).
    pub fn is_query(&self) -> bool {
        self.protocol == "query" || self.protocol == "ec2"
    }
}

#[derive(Debug, Deserialize)]
pub struct Operation {
    pub input: Option<ShapeRef>,
    pub output: Option<OutputRef>,
    #[serde(default)]
    pub errors: Vec<ShapeRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShapeRef {
    pub shape: String,
    /// A list member's or map key's/value's XML element name.
    pub location_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputRef {
    pub shape: String,
    /// Query protocol: the element the output's members are wrapped in.
    pub result_wrapper: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub members: Vec<Member>,
    #[serde(default)]
    pub required: Vec<String>,
    pub member: Option<ShapeRef>,
    pub key: Option<ShapeRef>,
    pub value: Option<ShapeRef>,
    #[serde(rename = "enum")]
    pub values: Option<Vec<String>>,
    #[serde(default)]
    pub document: bool,
    /// Query protocol lists and maps: serialized without a wrapper element.
    #[serde(default)]
    pub flattened: bool,
    #[serde(default)]
    pub exception: bool,
    #[serde(default)]
    pub fault: bool,
    pub error: Option<ErrorTrait>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub name: String,
    pub shape: String,
    /// Query/EC2: the serialized name (XML element; EC2 request key capitalised).
    pub location_name: Option<String>,
    /// EC2: the request key, when it differs from the location name.
    pub query_name: Option<String>,
    #[serde(default)]
    pub flattened: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorTrait {
    pub code: Option<String>,
    pub http_status_code: Option<u16>,
}

impl Shape {
    pub fn is_enum(&self) -> bool {
        self.kind == "string" && self.values.is_some()
    }

    pub fn is_struct(&self) -> bool {
        self.kind == "structure" && !self.document
    }
}
