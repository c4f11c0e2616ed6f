//! The `query` and `ec2` protocols (STS, IAM, EC2): requests are
//! form-encoded (`Action=…&Version=…&Name.1=…`), answers are XML. The
//! generated service modules describe their shapes in a [`Schema`];
//! [`form`] decodes a request into the operation's input type by it, as
//! botocore's `QuerySerializer`/`EC2Serializer` encoded it, and [`xml`]
//! writes the output as botocore's `QueryParser`/`EC2QueryParser` read it.

pub mod form;
mod schema;
#[cfg(test)]
mod test_schema;
pub mod xml;

pub use form::{decode_input, Params};
pub use schema::{Member, Protocol, Schema, Shape};
pub use xml::{ec2_error, encode_output, query_error};
