//! A small schema in both protocols for the decoder's and encoder's tests.

use super::schema::{Member, Protocol, Schema, Shape};

const fn m(
    name: &'static str,
    shape: &'static str,
    location_name: Option<&'static str>,
    query_name: Option<&'static str>,
    required: bool,
) -> Member {
    Member {
        name,
        shape,
        location_name,
        query_name,
        flattened: false,
        required,
    }
}

const SHAPES: &[(&str, Shape)] = &[
    ("Boolean", Shape::Boolean),
    (
        "Filter",
        Shape::Structure(&[
            m("Name", "String", None, None, false),
            m("Values", "StringList", Some("Value"), None, false),
        ]),
    ),
    (
        "FilterList",
        Shape::List {
            member: "Filter",
            member_name: Some("Filter"),
            flattened: false,
        },
    ),
    (
        "Inner",
        Shape::Structure(&[m("Flag", "Boolean", None, None, false)]),
    ),
    (
        "Input",
        Shape::Structure(&[
            m("Filters", "FilterList", Some("Filter"), None, false),
            m("GroupName", "String", Some("groupName"), None, true),
            m("DryRun", "Boolean", Some("dryRun"), None, false),
            m("Ids", "StringList", Some("Id"), Some("IdSet"), false),
            m("Count", "Integer", None, None, false),
            m("Since", "Timestamp", None, None, false),
            m("Tags", "TagMap", None, None, false),
            m("Inner", "Inner", None, None, false),
        ]),
    ),
    ("Integer", Shape::Integer),
    (
        "Output",
        Shape::Structure(&[
            m("Items", "StringList", Some("itemSet"), None, false),
            m("Name", "String", Some("name"), None, false),
            m("Default", "Boolean", Some("isDefault"), None, false),
            m("When", "Timestamp", None, None, false),
            m("Tags", "TagMap", None, None, false),
        ]),
    ),
    ("String", Shape::String),
    (
        "StringList",
        Shape::List {
            member: "String",
            member_name: Some("item"),
            flattened: false,
        },
    ),
    (
        "TagMap",
        Shape::Map {
            key: "String",
            value: "String",
            key_name: None,
            value_name: None,
            flattened: false,
        },
    ),
    ("Timestamp", Shape::Timestamp),
];

pub static EC2: Schema = Schema {
    protocol: Protocol::Ec2,
    namespace: "http://ec2.amazonaws.com/doc/2016-11-15",
    shapes: SHAPES,
};

pub static QUERY: Schema = Schema {
    protocol: Protocol::Query,
    namespace: "https://sts.amazonaws.com/doc/2011-06-15/",
    shapes: SHAPES,
};
