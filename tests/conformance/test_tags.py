"""TagResource / UntagResource / ListTagsForResource on clusters and task
definitions, including the tagging restrictions of the ECS API reference:
at most 50 user tags per resource, key 1..128 and value 0..256 characters,
keys and values case-sensitive, the ``aws:`` prefix reserved."""

import pytest
from botocore.exceptions import ClientError

from errors import assert_error


def by_key(tags):
    return sorted(tags, key=lambda t: t["key"])


def tags_of(ecs, arn):
    return by_key(ecs.list_tags_for_resource(resourceArn=arn)["tags"])


@pytest.fixture(params=["cluster", "task-definition"])
def resource_arn(request, ecs, name):
    if request.param == "cluster":
        return ecs.create_cluster(clusterName=name("tagc"))["cluster"]["clusterArn"]
    return ecs.register_task_definition(
        family=name("tagtd"),
        containerDefinitions=[{"name": "a", "image": "busybox", "memory": 32}],
    )["taskDefinition"]["taskDefinitionArn"]


def test_tag_list_untag(ecs, resource_arn):
    assert tags_of(ecs, resource_arn) == []
    ecs.tag_resource(resourceArn=resource_arn, tags=[{"key": "a", "value": "1"},
                                                     {"key": "b", "value": ""}])
    assert tags_of(ecs, resource_arn) == [{"key": "a", "value": "1"}, {"key": "b", "value": ""}]
    # overwrite one, add one
    ecs.tag_resource(resourceArn=resource_arn, tags=[{"key": "a", "value": "2"},
                                                     {"key": "c", "value": "3"}])
    assert tags_of(ecs, resource_arn) == [{"key": "a", "value": "2"}, {"key": "b", "value": ""},
                                          {"key": "c", "value": "3"}]
    # untag existing and non-existing keys
    ecs.untag_resource(resourceArn=resource_arn, tagKeys=["a", "does-not-exist"])
    assert tags_of(ecs, resource_arn) == [{"key": "b", "value": ""}, {"key": "c", "value": "3"}]


def test_tag_keys_are_case_sensitive(ecs, resource_arn):
    ecs.tag_resource(resourceArn=resource_arn, tags=[{"key": "Env", "value": "Prod"},
                                                     {"key": "env", "value": "prod"}])
    assert tags_of(ecs, resource_arn) == [{"key": "Env", "value": "Prod"},
                                          {"key": "env", "value": "prod"}]


def test_tags_visible_in_describe(ecs, name):
    n = name("tagc")
    arn = ecs.create_cluster(clusterName=n)["cluster"]["clusterArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "v"}])
    c = ecs.describe_clusters(clusters=[n], include=["TAGS"])["clusters"][0]
    assert c["tags"] == [{"key": "k", "value": "v"}]


def test_tags_given_at_registration_are_listed(ecs, name):
    arn = ecs.register_task_definition(
        family=name("tagtd"), tags=[{"key": "x", "value": "y"}],
        containerDefinitions=[{"name": "a", "image": "busybox", "memory": 32}],
    )["taskDefinition"]["taskDefinitionArn"]
    assert tags_of(ecs, arn) == [{"key": "x", "value": "y"}]


def test_fifty_tags_allowed_fifty_one_refused(ecs, resource_arn):
    fifty = [{"key": f"k{i:02d}", "value": f"v{i}"} for i in range(50)]
    ecs.tag_resource(resourceArn=resource_arn, tags=fifty)
    assert len(tags_of(ecs, resource_arn)) == 50
    # overwriting existing keys does not grow the set
    ecs.tag_resource(resourceArn=resource_arn, tags=[{"key": "k00", "value": "new"}])
    with pytest.raises(ClientError) as e:
        ecs.tag_resource(resourceArn=resource_arn, tags=[{"key": "one-too-many", "value": "x"}])
    assert_error(e, "InvalidParameterException")
    assert len(tags_of(ecs, resource_arn)) == 50


def test_fifty_one_tags_in_one_request(ecs, resource_arn):
    with pytest.raises(ClientError) as e:
        ecs.tag_resource(resourceArn=resource_arn,
                         tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    assert_error(e, "InvalidParameterException")
    assert tags_of(ecs, resource_arn) == []


def test_fifty_one_tags_at_creation(ecs, name):
    with pytest.raises(ClientError) as e:
        ecs.create_cluster(clusterName=name("tagc"),
                           tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    assert_error(e, "InvalidParameterException")


@pytest.mark.parametrize("tag", [
    {"key": "k" * 129, "value": "v"},
    {"key": "k", "value": "v" * 257},
    {"key": "aws:reserved", "value": "v"},
    {"key": "AWS:Reserved", "value": "v"},
    {"key": "bad{char}", "value": "v"},
], ids=["key-129", "value-257", "aws-prefix", "AWS-prefix", "bad-char"])
def test_invalid_tags_refused(ecs, resource_arn, tag):
    with pytest.raises(ClientError) as e:
        ecs.tag_resource(resourceArn=resource_arn, tags=[tag])
    assert_error(e, "InvalidParameterException", "ClientException")
    assert tags_of(ecs, resource_arn) == []


def test_max_length_tags_accepted(ecs, resource_arn):
    tag = {"key": "k" * 128, "value": "v" * 256}
    ecs.tag_resource(resourceArn=resource_arn, tags=[tag])
    assert tags_of(ecs, resource_arn) == [tag]


def test_untag_aws_prefix_refused(ecs, resource_arn):
    with pytest.raises(ClientError) as e:
        ecs.untag_resource(resourceArn=resource_arn, tagKeys=["aws:cloudformation:stack-name"])
    assert_error(e, "InvalidParameterException", "ClientException")


def test_unknown_cluster_arn(ecs, name, region, account_id):
    arn = f"arn:aws:ecs:{region}:{account_id}:cluster/{name('ghost')}"
    for call in (lambda: ecs.list_tags_for_resource(resourceArn=arn),
                 lambda: ecs.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "v"}]),
                 lambda: ecs.untag_resource(resourceArn=arn, tagKeys=["k"])):
        with pytest.raises(ClientError) as e:
            call()
        assert_error(e, "ClusterNotFoundException", "InvalidParameterException",
                     "ResourceNotFoundException")


def test_unknown_task_definition_arn(ecs, name, region, account_id):
    arn = f"arn:aws:ecs:{region}:{account_id}:task-definition/{name('ghost')}:1"
    with pytest.raises(ClientError) as e:
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "v"}])
    assert_error(e, "ClientException", "InvalidParameterException", "ResourceNotFoundException")
    with pytest.raises(ClientError) as e:
        ecs.list_tags_for_resource(resourceArn=arn)
    assert_error(e, "ClientException", "InvalidParameterException", "ResourceNotFoundException")


@pytest.mark.parametrize("arn", ["not-an-arn", "arn:aws:ecs:us-east-1:123456789012:",
                                 "arn:aws:ecs:us-east-1:123456789012:widget/x",
                                 "arn:aws:s3:::bucket"])
def test_malformed_arn(ecs, arn):
    with pytest.raises(ClientError) as e:
        ecs.list_tags_for_resource(resourceArn=arn)
    assert_error(e, "InvalidParameterException", "ClientException")


def test_tags_survive_deregistration(ecs, name):
    family = name("tagtd")
    arn = ecs.register_task_definition(
        family=family, tags=[{"key": "k", "value": "v"}],
        containerDefinitions=[{"name": "a", "image": "busybox", "memory": 32}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=arn)
    d = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    assert d["tags"] == [{"key": "k", "value": "v"}]
