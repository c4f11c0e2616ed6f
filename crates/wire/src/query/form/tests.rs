use super::*;
use crate::query::test_schema::{EC2, QUERY};
use serde_json::json;

fn decode(schema: &Schema, form: &str) -> Result<Value, ApiError> {
    decode_input::<Value>(
        schema,
        "Input",
        &Params::parse(form.as_bytes()).unwrap(),
        "InvalidParameterValue",
    )
}

#[test]
fn ec2_lists_are_flat_and_keys_capitalised_or_query_named() {
    // As botocore's EC2Serializer writes describe_vpcs(Filters=…, …).
    let v = decode(
        &EC2,
        "Action=DescribeVpcs&Version=2016-11-15&GroupName=web&Filter.1.Name=isDefault\
&Filter.1.Value.1=true&Filter.2.Name=vpc-id&Filter.2.Value.1=vpc-1&Filter.2.Value.2=vpc-2\
&IdSet.1=a&DryRun=false&Count=3&Since=2026-01-02T03%3A04%3A05.250Z&Inner.Flag=true",
    )
    .unwrap();
    assert_eq!(
        v,
        json!({
            "GroupName": "web",
            "Filters": [
                {"Name": "isDefault", "Values": ["true"]},
                {"Name": "vpc-id", "Values": ["vpc-1", "vpc-2"]},
            ],
            "Ids": ["a"],
            "DryRun": false,
            "Count": 3,
            "Since": 1767323045.25,
            "Inner": {"Flag": true},
        })
    );
}

#[test]
fn query_lists_have_members_and_maps_entries() {
    let v = decode(
        &QUERY,
        // Keys are location names; items are named by the list's member name.
        "groupName=web&Filter.Filter.2.Name=b&Filter.Filter.1.Name=a&Filter.Filter.1.Value.item.1=x\
&Tags.entry.1.key=k&Tags.entry.1.value=v%20w&Id=",
    )
    .unwrap();
    assert_eq!(
        v,
        json!({
            "GroupName": "web",
            "Filters": [{"Name": "a", "Values": ["x"]}, {"Name": "b"}],
            "Tags": {"k": "v w"},
            "Ids": [],
        })
    );
}

#[test]
fn bad_requests_name_the_parameter() {
    let e = decode(&EC2, "Filter.1.Name=a").unwrap_err();
    assert_eq!(
        (e.code.as_ref(), e.message.as_str()),
        (
            "MissingParameter",
            "The request must contain the parameter GroupName"
        )
    );
    let e = decode(&EC2, "GroupName=a&Bogus=1").unwrap_err();
    assert_eq!(e.code, "UnknownParameter");
    assert!(e.message.contains("Bogus"), "{}", e.message);
    let e = decode(&EC2, "GroupName=a&Count=many").unwrap_err();
    assert_eq!(e.code, "InvalidParameterValue");
    assert!(e.message.contains("Count"), "{}", e.message);
    let e = decode(&EC2, "GroupName=a&DryRun=yes").unwrap_err();
    assert_eq!(e.code, "InvalidParameterValue");
    let e = decode(&EC2, "GroupName=a&Filter.x.Name=a").unwrap_err();
    assert_eq!(e.code, "UnknownParameter");
    let e = decode(&EC2, "GroupName=a&Filter.01.Name=a").unwrap_err();
    assert_eq!(e.code, "UnknownParameter");
    // A list given where a scalar belongs, and the other way round.
    assert!(decode(&EC2, "GroupName.1=a").is_err());
    assert!(decode(&EC2, "GroupName=a&Inner=x").is_err());
    assert_eq!(
        Params::parse(b"Action=\xff").unwrap_err().code,
        "MalformedQueryString"
    );
}

#[test]
fn params_read_the_action() {
    let mut p = Params::parse(b"Action=GetCallerIdentity&Version=2011-06-15").unwrap();
    assert_eq!(p.action(), Some("GetCallerIdentity"));
    p.extend(Params::parse(b"Action=Other").unwrap());
    assert_eq!(p.action(), Some("Other"));
    assert_eq!(Params::parse(b"Action=").unwrap().action(), None);
}

#[test]
fn absurdly_deep_keys_are_refused_not_built() {
    let key = "Filter".to_string() + &".1".repeat(200_000);
    let e = decode(&EC2, &format!("GroupName=a&{key}=x")).unwrap_err();
    assert_eq!(e.code, "UnknownParameter");
    assert!(e.message.len() < 200, "{}", e.message);
}
