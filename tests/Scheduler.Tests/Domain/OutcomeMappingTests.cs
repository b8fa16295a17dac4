using DurableTask.Scheduler.Api;
using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Protocol;
using Grpc.AspNetCore.Server.Model;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Domain;

/// <summary>
/// Each of the task hub's outcomes reaches gRPC callers as the status code the SDKs expect and JSON API callers as the
/// HTTP status the dashboard expects, each mapped on its own; the message is passed on unchanged.
/// </summary>
public class OutcomeMappingTests
{
    public static TheoryData<TaskHubErrorKind, StatusCode, int, string> Kinds => new()
    {
        { TaskHubErrorKind.NotFound, StatusCode.NotFound, StatusCodes.Status404NotFound, "Not found" },
        { TaskHubErrorKind.AlreadyExists, StatusCode.AlreadyExists, StatusCodes.Status409Conflict, "Already exists" },
        { TaskHubErrorKind.WrongState, StatusCode.FailedPrecondition, StatusCodes.Status409Conflict, "Conflict" },
        { TaskHubErrorKind.Invalid, StatusCode.InvalidArgument, StatusCodes.Status400BadRequest, "Invalid request" },
        { TaskHubErrorKind.TooLarge, StatusCode.InvalidArgument, StatusCodes.Status400BadRequest, "Invalid request" },
        { TaskHubErrorKind.StoreUnavailable, StatusCode.Unavailable, StatusCodes.Status503ServiceUnavailable, "Unavailable" },
        { TaskHubErrorKind.Moved, StatusCode.Unavailable, StatusCodes.Status503ServiceUnavailable, "Unavailable" },
        { TaskHubErrorKind.LimitReached, StatusCode.ResourceExhausted, StatusCodes.Status429TooManyRequests, "Too many requests" },
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_kind_has_its_grpc_code_and_http_status(TaskHubErrorKind kind, StatusCode code, int status, string title)
    {
        Assert.Equal(code, GrpcOutcomes.Code(kind));
        Assert.Equal((status, title), ApiErrors.StatusOf(kind));

        var rpc = GrpcOutcomes.ToRpcException(new TaskHubException(kind, "what went wrong"));
        Assert.Equal(code, rpc.StatusCode);
        Assert.Equal("what went wrong", rpc.Status.Detail);
    }

    [Fact]
    public void The_table_covers_every_kind()
    {
        var covered = Kinds.Select(row => (TaskHubErrorKind)row[0]).ToHashSet();
        Assert.Equal(System.Enum.GetValues<TaskHubErrorKind>().ToHashSet(), covered);
    }

    static readonly Method<Empty, Empty> Plain = Method("Hello");

    static Method<Empty, Empty> Method(string name)
    {
        var marshaller = Marshallers.Create(_ => [], _ => new Empty());
        return new Method<Empty, Empty>(MethodType.Unary, TaskHubSidecarService.Descriptor.FullName, name, marshaller, marshaller);
    }

    [Fact]
    public async Task A_wrapped_handler_answers_outcomes_as_statuses_thrown_at_once_or_later()
    {
        var thrown = GrpcOutcomes.Map<object, Empty, Empty>(Plain, (_, _, _) => throw TaskHubException.InstanceNotFound("a"));
        var sync = Assert.Throws<RpcException>(() => { _ = thrown(new object(), new Empty(), null!); });
        Assert.Equal(new Status(StatusCode.NotFound, "orchestration instance 'a' not found"), sync.Status);

        var later = new TaskCompletionSource<Empty>();
        var faulting = GrpcOutcomes.Map<object, Empty, Empty>(Plain, (_, _, _) => later.Task);
        var call = faulting(new object(), new Empty(), null!);
        later.SetException(TaskHubException.WrongState("not now"));
        var async = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.Equal(new Status(StatusCode.FailedPrecondition, "not now"), async.Status);

        // Other exceptions pass unchanged: the library answers them as it always has.
        var other = GrpcOutcomes.Map<object, Empty, Empty>(Plain, (_, _, _) => Task.FromException<Empty>(new InvalidOperationException("bug")));
        await Assert.ThrowsAsync<InvalidOperationException>(() => other(new object(), new Empty(), null!));
    }

    [Fact]
    public void A_handler_that_succeeded_at_once_returns_its_own_task_and_completions_are_not_wrapped()
    {
        var done = Task.FromResult(new Empty());
        var wrapped = GrpcOutcomes.Map<object, Empty, Empty>(Plain, (_, _, _) => done);
        Assert.Same(done, wrapped(new object(), new Empty(), null!));

        UnaryServerMethod<object, Empty, Empty> completion = (_, _, _) => done;
        Assert.Same(completion, GrpcOutcomes.Map(Method("CompleteOrchestratorTask"), completion));
        Assert.Same(completion, GrpcOutcomes.Map(Method("CompleteActivityTask"), completion));
        Assert.NotSame(completion, GrpcOutcomes.Map(Method("StartInstance"), completion));
    }
}
