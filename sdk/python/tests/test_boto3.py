"""boto3 through credgate against a real S3-compatible server that verifies SigV4 strictly:
the AWS keys stay in credgate, the app signs with nothing it could leak."""

from __future__ import annotations

import hashlib

import boto3
import pytest
from botocore.exceptions import ClientError

import credgate


def s3_grant(world, s3, name: str, secret_key: str) -> str:
    secret = world.gateway.secret({
        "name": name, "type": "aws_sigv4",
        "credential": {"access_key_id": "AKIDPYTHONTEST", "secret_access_key": secret_key},
        "config": {"base_url": s3.url, "region": "us-east-1", "service": "s3"},
        "allow_private_destinations": True, "allow_insecure_http": True,
    })
    return world.grant(secret)


def test_boto3_client_puts_gets_lists_and_deletes(world, s3):
    grant = s3_grant(world, s3, "s3", "python/secret+KEY")
    with credgate.SyncApp(world.key, base_url=world.gateway.url) as vault:
        client = vault.boto3_client("s3", grant_id=grant)
        client.create_bucket(Bucket="py-bucket")
        client.put_object(Bucket="py-bucket", Key="small.txt", Body=b"hello")
        big = bytes(range(256)) * (5 * 4096)  # 5 MiB
        client.put_object(Bucket="py-bucket", Key="dir/big.bin", Body=big)
        assert client.get_object(Bucket="py-bucket", Key="small.txt")["Body"].read() == b"hello"
        got = client.get_object(Bucket="py-bucket", Key="dir/big.bin")["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()
        listed = client.list_objects_v2(Bucket="py-bucket", Prefix="dir/")
        assert [o["Key"] for o in listed["Contents"]] == ["dir/big.bin"]
        client.delete_object(Bucket="py-bucket", Key="small.txt")
        client.delete_object(Bucket="py-bucket", Key="dir/big.bin")
        assert client.list_objects_v2(Bucket="py-bucket").get("KeyCount") == 0
        client.delete_bucket(Bucket="py-bucket")


def test_a_wrong_stored_secret_surfaces_as_client_error(world, s3):
    grant = s3_grant(world, s3, "s3-wrong", "not-the-secret")
    with credgate.SyncApp(world.key, base_url=world.gateway.url) as vault:
        client = vault.boto3_client("s3", grant_id=grant)
        with pytest.raises(ClientError) as raised:
            client.list_buckets()
    assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_plain_boto3_with_endpoint_url(world, s3):
    """The recipe for code that builds its own boto3 client."""
    grant = s3_grant(world, s3, "s3-recipe", "python/secret+KEY")
    client = boto3.client(
        "s3",
        endpoint_url=f"{world.gateway.url}/v1/grants/{grant}",
        aws_access_key_id=world.key,           # the app key, not an AWS key
        aws_secret_access_key="unused",        # credgate signs with the stored secret
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="recipe")
    client.put_object(Bucket="recipe", Key="k", Body=b"v")
    assert client.get_object(Bucket="recipe", Key="k")["Body"].read() == b"v"
    client.delete_object(Bucket="recipe", Key="k")
    client.delete_bucket(Bucket="recipe")
