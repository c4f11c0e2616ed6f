"""The issue's acceptance scenario, with the real aws-cli.

Every response the CLI receives is validated by the ``berth_cli_plugin``
aws-cli plugin (loaded through ``[plugins]`` in a private AWS_CONFIG_FILE),
so these tests check both what the CLI shows and what went over the wire.
"""

import json
import shlex
import subprocess

import pytest

from harness import berth_bin

CONTAINERS = json.dumps([{"name": "web", "image": "nginx:1.27", "memory": 128,
                          "portMappings": [{"containerPort": 80}]}])


def test_acceptance_tour(cli, name):
    cluster, family = name("tour"), name("tour")

    created = cli("ecs", "create-cluster", "--cluster-name", cluster)["cluster"]
    assert created["clusterName"] == cluster and created["status"] == "ACTIVE"

    revisions = []
    for i in range(7):
        out = cli("ecs", "register-task-definition", "--family", family,
                  "--container-definitions", CONTAINERS,
                  "--tags", f"key=rev,value={i + 1}")
        revisions.append(out["taskDefinition"]["revision"])
    assert revisions == list(range(1, 8))

    # three at a time with --max-items / --starting-token
    pages, token = [], None
    while True:
        args = ["ecs", "list-task-definitions", "--family-prefix", family, "--max-items", "3"]
        if token:
            args += ["--starting-token", token]
        out = cli(*args)
        pages.append([a.rsplit(":", 1)[1] for a in out["taskDefinitionArns"]])
        token = out.get("NextToken")
        if not token:
            break
    assert pages == [["1", "2", "3"], ["4", "5", "6"], ["7"]]

    # the CLI's own pagination, 3 per request
    out = cli("ecs", "list-task-definitions", "--family-prefix", family, "--page-size", "3",
              "--sort", "DESC")
    assert [a.rsplit(":", 1)[1] for a in out["taskDefinitionArns"]] == \
        ["7", "6", "5", "4", "3", "2", "1"]

    dereg = cli("ecs", "deregister-task-definition", "--task-definition", f"{family}:4")
    assert dereg["taskDefinition"]["status"] == "INACTIVE"

    active = cli("ecs", "list-task-definitions", "--family-prefix", family)
    assert [a.rsplit(":", 1)[1] for a in active["taskDefinitionArns"]] == \
        ["1", "2", "3", "5", "6", "7"]
    inactive = cli("ecs", "list-task-definitions", "--family-prefix", family,
                   "--status", "INACTIVE")
    assert [a.rsplit(":", 1)[1] for a in inactive["taskDefinitionArns"]] == ["4"]

    described = cli("ecs", "describe-task-definition", "--task-definition", family,
                    "--include", "TAGS")
    assert described["taskDefinition"]["revision"] == 7
    assert described["tags"] == [{"key": "rev", "value": "7"}]

    fams = cli("ecs", "list-task-definition-families", "--family-prefix", family)
    assert fams["families"] == [family]

    clusters = cli("ecs", "describe-clusters", "--clusters", cluster)
    assert clusters["clusters"][0]["status"] == "ACTIVE"
    deleted = cli("ecs", "delete-cluster", "--cluster", cluster)
    assert deleted["cluster"]["status"] == "INACTIVE"


def test_cli_error_exit_code_and_message(cli, name):
    code, stderr = cli.fails("ecs", "delete-cluster", "--cluster", name("ghost"))
    assert code in (254, 255), stderr  # aws-cli v2: 254, v1: 255 for service errors
    assert "ClusterNotFoundException" in stderr
    assert "DeleteCluster" in stderr


def test_cli_validation_error(cli, name):
    code, stderr = cli.fails("ecs", "register-task-definition", "--family", name("bad"),
                             "--container-definitions",
                             json.dumps([{"name": "a", "image": "x", "memory": 64},
                                         {"name": "a", "image": "x", "memory": 64}]))
    assert code in (254, 255)
    assert "ClientException" in stderr or "InvalidParameterException" in stderr


def test_cli_tagging_and_account_settings(cli, name):
    arn = cli("ecs", "create-cluster", "--cluster-name", name("tagcli"))["cluster"]["clusterArn"]
    cli("ecs", "tag-resource", "--resource-arn", arn, "--tags", "key=a,value=1", "key=b,value=2")
    tags = cli("ecs", "list-tags-for-resource", "--resource-arn", arn)["tags"]
    assert sorted((t["key"], t["value"]) for t in tags) == [("a", "1"), ("b", "2")]
    cli("ecs", "untag-resource", "--resource-arn", arn, "--tag-keys", "a")
    assert cli("ecs", "list-tags-for-resource", "--resource-arn", arn)["tags"] == \
        [{"key": "b", "value": "2"}]
    out = cli("ecs", "list-account-settings", "--effective-settings", "--name",
              "containerInsights")
    assert [s["name"] for s in out["settings"]] == ["containerInsights"]


def test_cli_update_cluster_settings(cli, name):
    n = name("upd")
    cli("ecs", "create-cluster", "--cluster-name", n)
    out = cli("ecs", "update-cluster-settings", "--cluster", n,
              "--settings", "name=containerInsights,value=enabled")
    assert {"name": "containerInsights", "value": "enabled"} in out["cluster"]["settings"]


@pytest.mark.berth_only
def test_eval_berth_env_tour(cli, server, name):
    """The documented quick start: eval "$(berth env)" and use the plain CLI."""
    cluster, family = name("evaltour"), name("evaltour")
    script = f"""
set -euo pipefail
eval "$({shlex.quote(str(berth_bin()))} env --data-dir {shlex.quote(str(server.data_dir))})"
test -n "$AWS_ENDPOINT_URL" && test -n "$AWS_ACCESS_KEY_ID" && test -n "$AWS_SECRET_ACCESS_KEY"
test "$AWS_DEFAULT_REGION" = us-east-1
aws ecs create-cluster --cluster-name {cluster} --output json > /dev/null
for i in 1 2 3 4 5 6 7; do
  aws ecs register-task-definition --family {family} \\
      --container-definitions {shlex.quote(CONTAINERS)} --output json > /dev/null
done
aws ecs list-task-definitions --family-prefix {family} --max-items 3 --output json > page1.json
aws ecs deregister-task-definition --task-definition {family}:7 --output json > /dev/null
aws ecs list-task-definitions --family-prefix {family} --output json > all.json
aws ecs describe-clusters --clusters {cluster} --output json > clusters.json
"""
    # base_env(): no AWS_* from the harness -- the credentials come from eval
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                       env=cli.base_env(), cwd=cli.workdir, timeout=300)
    cli._collect()
    assert r.returncode == 0, r.stderr
    page1 = json.loads((cli.workdir / "page1.json").read_text())
    assert len(page1["taskDefinitionArns"]) == 3 and page1.get("NextToken")
    everything = json.loads((cli.workdir / "all.json").read_text())
    assert [a.rsplit(":", 1)[1] for a in everything["taskDefinitionArns"]] == \
        ["1", "2", "3", "4", "5", "6"]
    clusters = json.loads((cli.workdir / "clusters.json").read_text())
    assert clusters["clusters"][0]["clusterName"] == cluster


@pytest.mark.berth_only
def test_berth_env_output_format(server):
    from harness import parse_env_exports
    out = server.run_cli("env", "--data-dir", str(server.data_dir))
    lines = [l for l in out.splitlines() if l.strip() and not l.startswith("#")]
    # `unset AWS_SESSION_TOKEN AWS_PROFILE` (so stale values do not leak into
    # the signing) is fine too; everything else must be an export.
    assert all(l.startswith(("export ", "unset ")) for l in lines), out
    env = parse_env_exports(out)
    assert env["AWS_ENDPOINT_URL"].rstrip("/") == server.endpoint
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] in {c.access_key_id for c in server.creds}
    secret = {c.access_key_id: c.secret_access_key for c in server.creds}
    assert env["AWS_SECRET_ACCESS_KEY"] == secret[env["AWS_ACCESS_KEY_ID"]]


@pytest.mark.berth_only
def test_berth_logs_prints_a_tasks_awslogs_output(server, ecs, name):
    """`berth logs --follow` reads a task's awslogs streams (two containers,
    labelled) until the task stops, with only `berth env`'s environment;
    `--container` narrows it to one."""
    cluster, family, group = name("logs"), name("logs"), name("/berth/logs")

    def awslogs():
        return {"logDriver": "awslogs", "options": {
            "awslogs-group": group, "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "app", "awslogs-create-group": "true"}}

    def sh(cname, script, essential=True):
        return {"name": cname, "image": "host", "entryPoint": ["/bin/sh", "-c"],
                "command": [script], "essential": essential, "logConfiguration": awslogs()}

    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", containerDefinitions=[
            sh("web", "for i in 1 2 3; do echo web-line-$i; sleep 0.3; done", essential=False),
            sh("job", "echo job-start; sleep 2; echo job-done")])
    task = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="FARGATE",
                        networkConfiguration={"awsvpcConfiguration": {
                            "subnets": ["subnet-berth"]}})["tasks"][0]["taskArn"]
    berth = shlex.quote(str(berth_bin()))
    script = f"""
set -euo pipefail
eval "$({berth} env --data-dir {shlex.quote(str(server.data_dir))})"
{berth} logs --cluster {cluster} --task {task} --follow
"""
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [x for x in lines if x.startswith("web | ")] == \
        ["web | web-line-1", "web | web-line-2", "web | web-line-3"]
    assert [x for x in lines if x.startswith("job | ")] == ["job | job-start", "job | job-done"]
    only = server.run_cli("logs", "--data-dir", str(server.data_dir), "--cluster", cluster,
                          "--task", task.rsplit("/", 1)[1], "--container", "job")
    assert only.splitlines() == ["job-start", "job-done"]
    r = subprocess.run([str(berth_bin()), "logs", "--data-dir", str(server.data_dir),
                        "--cluster", cluster, "--task", "0" * 32],
                       capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and "no task" in r.stderr, r.stderr
