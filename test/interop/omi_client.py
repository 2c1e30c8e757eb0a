#!/usr/bin/env python3
"""Independent-client wire-compatibility check for a chassis-ts OMI server.

Usage: /usr/bin/python3 test/interop/omi_client.py HOST:PORT

Talks to a server started with the echo model (examples/echo) using only the
official Python gRPC and protobuf libraries: stubs are generated at run time
from the repository's proto/ files with grpc_tools.protoc, and the last part
rebuilds the ModzyModel messages from server reflection alone.

Prints one JSON line per check ({"check": ..., "ok": ..., "detail": ...}) and
exits 1 if any check failed (2 on a usage or setup error). The server is shut
down by the final check, so run this against a fresh server.
"""

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import traceback

import grpc
from grpc_tools import protoc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
PROTO_FILES = [
    "model.proto",
    "grpc/health/v1/health.proto",
    "grpc/reflection/v1/reflection.proto",
]
TIMEOUT = 10  # seconds per call

REFLECTION_V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
REFLECTION_V1ALPHA = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"

failures = []


def report(check, ok, detail=None):
    line = {"check": check, "ok": bool(ok)}
    if detail is not None:
        line["detail"] = detail
    print(json.dumps(line, default=repr), flush=True)
    if not ok:
        failures.append(check)


def run_check(name, fn):
    """Runs fn(); it returns a detail (ok) or raises AssertionError/anything (failure)."""
    try:
        detail = fn()
        report(name, True, detail)
    except AssertionError as error:
        report(name, False, str(error) or traceback.format_exc(limit=2))
    except grpc.RpcError as error:
        report(name, False, {"grpc_code": str(error.code()), "grpc_details": error.details()})
    except Exception as error:  # noqa: BLE001 - every failure becomes a report line
        report(name, False, f"{type(error).__name__}: {error}")


def expect(actual, expected, what):
    assert actual == expected, f"{what}: expected {expected!r}, got {actual!r}"


# --------------------------------------------------------------------------
# Stub generation
# --------------------------------------------------------------------------


def well_known_include():
    """The directory holding google/protobuf/*.proto, or None.

    pip's grpcio-tools ships them in grpc_tools/_proto; Debian's
    python3-grpc-tools may not, but libprotobuf-dev puts them in /usr/include.
    None of our protofiles import them today; this keeps protoc happy if one does.
    """
    candidates = []
    try:
        import importlib.resources as resources

        candidates.append(str(resources.files("grpc_tools") / "_proto"))
    except Exception:  # noqa: BLE001
        pass
    candidates += ["/usr/include", "/usr/local/include"]
    for path in candidates:
        if os.path.isfile(os.path.join(path, "google", "protobuf", "descriptor.proto")):
            return path
    return None


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def generate_stubs(out_dir):
    args = ["grpc_tools.protoc", f"-I{PROTO_ROOT}"]
    include = well_known_include()
    if include:
        args.append(f"-I{include}")
    args += [f"--python_out={out_dir}", *PROTO_FILES]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed ({code}): {' '.join(args)}")
    # Load each module by file path under a private name: "grpc/reflection/v1/
    # reflection_pb2.py" would otherwise shadow (or be shadowed by) the grpc
    # package. None of these files import each other.
    model = load_module("interop_model_pb2", os.path.join(out_dir, "model_pb2.py"))
    health = load_module("interop_health_pb2", os.path.join(out_dir, "grpc/health/v1/health_pb2.py"))
    reflection = load_module(
        "interop_reflection_pb2", os.path.join(out_dir, "grpc/reflection/v1/reflection_pb2.py")
    )
    return model, health, reflection


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    address = argv[1]
    out_dir = tempfile.mkdtemp(prefix="omi-interop-")
    try:
        try:
            pb, health_pb, refl_pb = generate_stubs(out_dir)
        except Exception as error:  # noqa: BLE001
            report("generate_stubs", False, f"{type(error).__name__}: {error}")
            return 1
        report("generate_stubs", True, {"include_wkt": well_known_include()})
        channel = grpc.insecure_channel(address)
        try:
            grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        except grpc.FutureTimeoutError:
            report("connect", False, f"could not connect to {address} within {TIMEOUT}s")
            return 1
        report("connect", True, address)
        with channel:
            run_all(channel, pb, health_pb, refl_pb)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    print(json.dumps({"summary": True, "failures": failures}), flush=True)
    return 1 if failures else 0


def unary(channel, path, request_cls, response_cls):
    return channel.unary_unary(
        path,
        request_serializer=request_cls.SerializeToString,
        response_deserializer=response_cls.FromString,
    )


def run_all(channel, pb, health_pb, refl_pb):
    status = unary(channel, "/ModzyModel/Status", pb.StatusRequest, pb.StatusResponse)
    run = unary(channel, "/ModzyModel/Run", pb.RunRequest, pb.RunResponse)
    shutdown = unary(channel, "/ModzyModel/Shutdown", pb.ShutdownRequest, pb.ShutdownResponse)

    def check_status():
        r = status(pb.StatusRequest(), timeout=TIMEOUT)
        expect(r.status_code, 200, "status_code")
        expect(r.status, "OK", "status")
        expect(r.message, "Model Initialized Successfully.", "message of the first Status")
        info = r.model_info
        expect(info.model_name, "Echo", "model_info.model_name")
        expect(info.model_version, "1.0.0", "model_info.model_version")
        expect(info.model_author, "chassis-ts", "model_info.model_author")
        expect(info.source, "chassis-ts", "model_info.source")
        expect([i.filename for i in r.inputs], ["input", "raise"], "inputs filenames")
        expect(list(r.inputs[0].accepted_media_types), ["application/octet-stream"], "inputs[0].accepted_media_types")
        expect([o.filename for o in r.outputs], ["results.json"], "outputs filenames")
        expect(r.outputs[0].media_type, "application/json", "outputs[0].media_type")
        expect(r.resources.required_ram, "512M", "resources.required_ram")
        expect(r.resources.num_cpus, 1.0, "resources.num_cpus")
        expect(r.resources.num_gpus, 0, "resources.num_gpus")
        expect(r.timeout.status, "60s", "timeout.status")
        expect(r.timeout.run, "60s", "timeout.run")
        assert r.description.summary, "description.summary is empty"
        return {"message": r.message, "model": f"{info.model_name} {info.model_version}"}

    run_check("status", check_status)

    def check_status_again():
        r = status(pb.StatusRequest(), timeout=TIMEOUT)
        expect(r.status_code, 200, "status_code")
        expect(r.message, "Model Already Initialized.", "message")
        return r.message

    run_check("status_again", check_status_again)

    def check_run_batch():
        request = pb.RunRequest(
            inputs=[
                pb.InputItem(input={"input": b"one"}),
                pb.InputItem(input={"input": b"x", "raise": b"requested failure"}),
                pb.InputItem(input={"input": b"three"}),
            ]
        )
        r = run(request, timeout=TIMEOUT)
        expect(r.status_code, 200, "status_code")
        expect(r.status, "OK", "status")
        expect(r.message, "Inference executed", "message")
        expect(len(r.outputs), 3, "number of outputs")
        expect(r.outputs[0].success, True, "outputs[0].success")
        expect(dict(r.outputs[0].output), {"results.json": b"one"}, "outputs[0].output")
        expect(r.outputs[1].success, False, "outputs[1].success")
        expect(r.outputs[1].output.get("error"), b"requested failure", "outputs[1].output['error']")
        expect(r.outputs[2].success, True, "outputs[2].success")
        expect(dict(r.outputs[2].output), {"results.json": b"three"}, "outputs[2].output")
        return [o.success for o in r.outputs]

    run_check("run_batch", check_run_batch)

    def check_run_unknown_key():
        r = run(pb.RunRequest(inputs=[pb.InputItem(input={"no_such_key": b"1"})]), timeout=TIMEOUT)
        expect(r.status_code, 200, "status_code")
        expect(len(r.outputs), 1, "number of outputs")
        expect(r.outputs[0].success, False, "outputs[0].success")
        error = r.outputs[0].output.get("error", b"").decode("utf-8")
        assert "no_such_key" in error, f"error does not mention the key: {error!r}"
        return error

    run_check("run_unknown_key", check_run_unknown_key)

    def check_run_empty():
        r = run(pb.RunRequest(inputs=[]), timeout=TIMEOUT)
        expect(r.status_code, 200, "status_code")
        expect(len(r.outputs), 0, "number of outputs")
        return {"status_code": r.status_code, "message": r.message}

    run_check("run_empty", check_run_empty)

    def check_health():
        # Hand-encoded HealthCheckRequest{service: ""} is the empty message;
        # the reply is decoded with the generated class, then cross-checked
        # against the raw bytes (field 1 varint 1 = SERVING).
        call = channel.unary_unary(HEALTH_CHECK, request_serializer=None, response_deserializer=None)
        raw = call(b"", timeout=TIMEOUT)
        reply = health_pb.HealthCheckResponse.FromString(raw)
        serving = health_pb.HealthCheckResponse.SERVING
        expect(reply.status, serving, "HealthCheckResponse.status")
        expect(raw, b"\x08\x01", "raw HealthCheckResponse bytes")
        # Same through the generated request class, for the named service.
        typed = unary(channel, HEALTH_CHECK, health_pb.HealthCheckRequest, health_pb.HealthCheckResponse)
        named = typed(health_pb.HealthCheckRequest(service="ModzyModel"), timeout=TIMEOUT)
        expect(named.status, serving, "status of service 'ModzyModel'")
        return "SERVING"

    run_check("health_check", check_health)

    def reflect(path, requests):
        call = channel.stream_stream(
            path,
            request_serializer=refl_pb.ServerReflectionRequest.SerializeToString,
            response_deserializer=refl_pb.ServerReflectionResponse.FromString,
        )
        responses = list(call(iter(requests), timeout=TIMEOUT))
        expect(len(responses), len(requests), f"{path}: number of responses")
        return responses

    fetched = {}

    for label, path in (("v1alpha", REFLECTION_V1ALPHA), ("v1", REFLECTION_V1)):

        def check_reflection(path=path, label=label):
            list_r, file_r = reflect(
                path,
                [
                    refl_pb.ServerReflectionRequest(list_services=""),
                    refl_pb.ServerReflectionRequest(file_containing_symbol="ModzyModel"),
                ],
            )
            expect(list_r.WhichOneof("message_response"), "list_services_response", "first response kind")
            services = [s.name for s in list_r.list_services_response.service]
            for name in ("ModzyModel", "grpc.health.v1.Health"):
                assert name in services, f"list_services lacks {name!r}: {services}"
            kind = file_r.WhichOneof("message_response")
            if kind == "error_response":
                raise AssertionError(f"file_containing_symbol('ModzyModel'): {file_r.error_response}")
            expect(kind, "file_descriptor_response", "second response kind")
            blobs = list(file_r.file_descriptor_response.file_descriptor_proto)
            assert blobs, "file_descriptor_response is empty"
            files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in blobs]
            names = [f.name for f in files]
            assert any(any(s.name == "ModzyModel" for s in f.service) for f in files), f"no file declares ModzyModel: {names}"
            # Each protocol version must be usable on its own.
            pool = descriptor_pool.DescriptorPool()
            add_in_dependency_order(pool, files)
            pool.FindServiceByName("ModzyModel")
            fetched[label] = files
            return {"services": services, "files": names}

        run_check(f"reflection_{label}", check_reflection)

    def check_reflection_only_client():
        files = fetched.get("v1") or fetched.get("v1alpha")
        assert files, "reflection gave no descriptors (see the reflection checks)"
        pool = descriptor_pool.DescriptorPool()
        add_in_dependency_order(pool, files)
        service = pool.FindServiceByName("ModzyModel")
        method = service.methods_by_name["Run"]
        run_request_cls = message_class(pool, method.input_type.full_name)
        run_response_cls = message_class(pool, method.output_type.full_name)
        input_item_cls = message_class(pool, method.input_type.fields_by_name["inputs"].message_type.full_name)
        request = run_request_cls()
        item = request.inputs.add()
        item.input["input"] = b"via reflection"
        assert isinstance(item, input_item_cls), "inputs element is not the InputItem class"
        path = f"/{service.full_name}/{method.name}"
        expect(path, "/ModzyModel/Run", "method path built from the descriptor")
        call = channel.unary_unary(
            path,
            request_serializer=run_request_cls.SerializeToString,
            response_deserializer=run_response_cls.FromString,
        )
        r = call(request, timeout=TIMEOUT)
        expect(type(r).DESCRIPTOR.full_name, "RunResponse", "response type")
        expect(r.status_code, 200, "status_code")
        expect(len(r.outputs), 1, "number of outputs")
        expect(r.outputs[0].success, True, "outputs[0].success")
        expect(dict(r.outputs[0].output), {"results.json": b"via reflection"}, "outputs[0].output")
        return {"path": path, "output": r.outputs[0].output["results.json"].decode()}

    run_check("reflection_only_client", check_reflection_only_client)

    def check_shutdown():
        r = shutdown(pb.ShutdownRequest(), timeout=TIMEOUT)
        expect(r.status_code, 200, "status_code")
        expect(r.status, "OK", "status")
        expect(r.message, "Model Shutdown Successfully.", "message")
        return r.message

    run_check("shutdown", check_shutdown)


def add_in_dependency_order(pool, files):
    """Adds FileDescriptorProtos so that each file's imports come first."""
    by_name = {f.name: f for f in files}
    added = set()

    def add(f):
        if f.name in added:
            return
        added.add(f.name)
        for dep in f.dependency:
            if dep in by_name:
                add(by_name[dep])
        pool.Add(f)

    for f in files:
        add(f)


def message_class(pool, full_name):
    descriptor = pool.FindMessageTypeByName(full_name)
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
