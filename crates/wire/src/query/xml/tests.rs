use super::*;
use crate::query::test_schema::{EC2, QUERY};
use serde_json::json;

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

#[test]
fn ec2_answers_put_the_request_id_first_and_lists_in_items() {
    let out = json!({
        "Items": ["a", "b<&>"],
        "Name": "n",
        "Default": true,
        "When": 1767323045.25,
        "Tags": {"k": "v"},
    });
    let xml =
        text(encode_output(&EC2, "DescribeThings", Some("Output"), None, "rid", &out).unwrap());
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<DescribeThingsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
<requestId>rid</requestId>\
<itemSet><item>a</item><item>b&lt;&amp;&gt;</item></itemSet>\
<name>n</name><isDefault>true</isDefault><When>2026-01-02T03:04:05.250Z</When>\
<Tags><entry><key>k</key><value>v</value></entry></Tags>\
</DescribeThingsResponse>"
    );
    // Absent members are left out, empty lists kept.
    let xml =
        text(encode_output(&EC2, "X", Some("Output"), None, "r", &json!({"Items": []})).unwrap());
    assert!(xml.contains("<itemSet></itemSet></XResponse>"), "{xml}");
}

#[test]
fn query_answers_wrap_the_result_and_add_metadata() {
    let xml = text(
        encode_output(
            &QUERY,
            "GetThing",
            Some("Output"),
            Some("GetThingResult"),
            "rid",
            &json!({"Name": "n"}),
        )
        .unwrap(),
    );
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<GetThingResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
<GetThingResult><name>n</name></GetThingResult>\
<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetThingResponse>"
    );
}

#[test]
fn errors_in_each_protocols_shape() {
    assert_eq!(
        text(ec2_error(
            "InvalidVpcID.NotFound",
            "The vpc ID 'x' does not exist",
            "r"
        )),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>\
<Code>InvalidVpcID.NotFound</Code><Message>The vpc ID &apos;x&apos; does not exist</Message>\
</Error></Errors><RequestID>r</RequestID></Response>"
    );
    let q = text(query_error("InvalidAction", "a < b", 400, "r"));
    assert!(q.contains("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>a &lt; b</Message></Error><RequestId>r</RequestId></ErrorResponse>"), "{q}");
    assert!(text(query_error("InternalFailure", "x", 500, "r")).contains("<Type>Receiver</Type>"));
}

#[test]
fn timestamps_round_trip() {
    let t = parse_timestamp("2026-01-02T03:04:05.250Z").unwrap();
    assert_eq!(format_timestamp(t), "2026-01-02T03:04:05.250Z");
    assert_eq!(
        parse_timestamp("1767323045").unwrap(),
        Timestamp(1767323045.0)
    );
    assert!(parse_timestamp("yesterday").is_none());
}
