"""The AWS clients a user would point at credgate, unchanged, against a real S3-compatible
server that checks every signature: keys that need encoding, presigned URLs in both forms,
credgate's refusals as the SDK reads errors, and copies that must stay inside a grant."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

AKID = "AKIDPYTHONTEST"
SECRET = "python/secret+KEY"


def s3_secret(world, s3, name: str) -> str:
    return world.gateway.secret({
        "name": name, "type": "aws_sigv4",
        "credential": {"access_key_id": AKID, "secret_access_key": SECRET},
        "config": {"base_url": s3.url, "region": "us-east-1", "service": "s3"},
        "allow_private_destinations": True, "allow_insecure_http": True,
    })


def client(world, grant: str, **config):
    return boto3.client(
        "s3",
        endpoint_url=f"{world.gateway.url}/v1/grants/{grant}",
        aws_access_key_id=world.key,
        aws_secret_access_key="unused",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )


def aws_cli(world, grant: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": world.key, "AWS_SECRET_ACCESS_KEY": "unused",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
    })
    return subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", f"{world.gateway.url}/v1/grants/{grant}", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


def test_keys_that_need_encoding_round_trip(world, s3):
    grant = world.grant(s3_secret(world, s3, "enc"))
    c = client(world, grant)
    c.create_bucket(Bucket="enc")
    for key in ["100%.txt", "a/b%2Fc.txt", "semi;colon.txt", "space and+plus.txt", "group%2Fproject"]:
        c.put_object(Bucket="enc", Key=key, Body=key.encode())
        assert c.get_object(Bucket="enc", Key=key)["Body"].read() == key.encode(), key
    # Each key is its own object. (s3s-fs's listing decodes names once more than it stores
    # them, called directly too, so the names listed are not compared.)
    assert c.list_objects_v2(Bucket="enc")["KeyCount"] == 5


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_presigned_urls_work_in_both_forms(world, s3, signature_version):
    grant = world.grant(s3_secret(world, s3, f"presign-{signature_version}"))
    c = client(world, grant)
    bucket = f"presign-{signature_version.replace('s3v4', 'four').replace('s3', 'two')}"
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="k 1.txt", Body=b"presigned")
    url = client(world, grant, signature_version=signature_version).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k 1.txt"}, ExpiresIn=300)
    if signature_version == "s3":
        assert "AWSAccessKeyId=" in url and "Signature=" in url
    else:
        assert "X-Amz-Signature=" in url
    r = httpx.get(url, trust_env=False)
    assert r.status_code == 200, r.text
    assert r.content == b"presigned"


def test_the_aws_cli_presign_then_curl(world, s3):
    grant = world.grant(s3_secret(world, s3, "cli"))
    c = client(world, grant)
    c.create_bucket(Bucket="cli")
    c.put_object(Bucket="cli", Key="key", Body=b"from the cli")
    done = aws_cli(world, grant, "s3", "presign", "s3://cli/key")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    r = httpx.get(url, trust_env=False)
    assert r.status_code == 200, (url, r.text)
    assert r.content == b"from the cli"
    listed = aws_cli(world, grant, "s3api", "list-objects-v2", "--bucket", "cli")
    assert listed.returncode == 0, listed.stderr
    assert [o["Key"] for o in json.loads(listed.stdout)["Contents"]] == ["key"]


def test_refusals_reach_boto3_as_client_errors_with_credgates_code(world, s3):
    secret = s3_secret(world, s3, "refusals")
    limited = world.grant(secret, {"allowed_path_prefixes": ["/only/"]})
    c = client(world, limited)
    with pytest.raises(ClientError) as raised:
        c.list_objects_v2(Bucket="elsewhere")
    error = raised.value.response["Error"]
    assert error["Code"] == "policy_violation"
    assert "does not allow the path" in error["Message"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    revoked = world.grant(secret)
    r = world.gateway.admin.delete(f"/admin/v1/grants/{revoked}")
    assert r.status_code in (200, 204), r.text
    with pytest.raises(ClientError) as raised:
        client(world, revoked).list_objects_v2(Bucket="any")
    assert raised.value.response["Error"]["Code"] == "grant_revoked"

    done = aws_cli(world, revoked, "s3api", "list-objects-v2", "--bucket", "any")
    assert done.returncode != 0
    assert "grant_revoked" in done.stderr, done.stderr


def test_an_unsignable_aws_secret_is_refused_when_created(world):
    r = world.gateway.admin.post("/admin/v1/secrets", json={
        "name": "unsignable", "type": "aws_sigv4",
        "credential": {"access_key_id": AKID, "secret_access_key": SECRET},
        "config": {"base_url": "https://storage.example.com"},
    })
    assert r.status_code == 400, r.text
    assert "region" in r.json()["error"]["message"]
    # With the region and service named, the same host is fine.
    r = world.gateway.admin.post("/admin/v1/secrets", json={
        "name": "signable", "type": "aws_sigv4",
        "credential": {"access_key_id": AKID, "secret_access_key": SECRET},
        "config": {"base_url": "https://storage.example.com", "region": "eu-west-1", "service": "s3"},
    })
    assert r.status_code == 201, r.text


def test_a_copy_cannot_read_outside_the_grant(world, s3):
    secret = s3_secret(world, s3, "copy")
    admin = client(world, world.grant(secret))
    admin.create_bucket(Bucket="copies")
    admin.put_object(Bucket="copies", Key="private/secret.txt", Body=b"private")
    admin.put_object(Bucket="copies", Key="public/ok.txt", Body=b"public")
    c = client(world, world.grant(secret, {"allowed_path_prefixes": ["/copies/public/"]}))
    with pytest.raises(ClientError) as raised:
        c.get_object(Bucket="copies", Key="private/secret.txt")
    assert raised.value.response["Error"]["Code"] == "policy_violation"
    for source in ["copies/private/secret.txt", "/copies/public/../private/secret.txt",
                   "copies/public%2F..%2Fprivate%2Fsecret.txt"]:
        with pytest.raises(ClientError) as raised:
            c.copy_object(Bucket="copies", Key="public/copy.txt", CopySource=source)
        assert raised.value.response["Error"]["Code"] in ("policy_violation", "bad_request"), source
    upload = c.create_multipart_upload(Bucket="copies", Key="public/part.txt")
    with pytest.raises(ClientError) as raised:
        c.upload_part_copy(Bucket="copies", Key="public/part.txt", UploadId=upload["UploadId"], PartNumber=1,
                           CopySource={"Bucket": "copies", "Key": "private/secret.txt"})
    assert raised.value.response["Error"]["Code"] == "policy_violation"
    with pytest.raises(ClientError):
        admin.get_object(Bucket="copies", Key="public/copy.txt")
    # A copy inside the grant works.
    c.copy_object(Bucket="copies", Key="public/copy.txt", CopySource={"Bucket": "copies", "Key": "public/ok.txt"})
    assert admin.get_object(Bucket="copies", Key="public/copy.txt")["Body"].read() == b"public"
