using System.Reflection;
using DurableTask.Scheduler.Protocol.Wire;
using DurableTask.Scheduler.Security;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Microsoft.AspNetCore.Routing;
using Microsoft.DurableTask.Protobuf;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace DurableTask.Scheduler.Protocol;

public static class StrictMessageBinding
{
    /// <summary>
    /// Malformed request messages answer InvalidArgument, and every method gets its access check (MethodSecurity):
    /// replaces the library's service binder, which <c>AddGrpc</c> registers, with the strict one.
    /// </summary>
    public static IServiceCollection AddStrictMessageBinding(this IServiceCollection services)
    {
        services.RemoveAll(typeof(IServiceMethodProvider<>));
        services.TryAddEnumerable(ServiceDescriptor.Singleton(typeof(IServiceMethodProvider<>), typeof(StrictMessageServiceMethodProvider<>)));
        return services;
    }
}

/// <summary>
/// Binds gRPC services like the library's default binder, but with request deserializers that answer InvalidArgument
/// ("the request is not a valid X message") for bytes that are not a valid protobuf message, instead of the library's
/// Unknown "Exception was thrown by handler". Each handler carries its method's access check (<see cref="MethodSecurity"/>).
/// </summary>
sealed class StrictMessageServiceMethodProvider<TService>(MethodSecurity security) : IServiceMethodProvider<TService> where TService : class
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TService> context)
    {
        var bind = FindBindMethod(typeof(TService));
        if (bind is null) return;
        bind.Invoke(null, [new Binder(context, security), null]);
    }

    /// <summary>The generated <c>BindService(ServiceBinderBase, TServiceBase)</c> named by <see cref="BindServiceMethodAttribute"/> on the base class.</summary>
    static MethodInfo? FindBindMethod(Type? type)
    {
        for (; type is not null; type = type.BaseType)
        {
            if (type.GetCustomAttribute<BindServiceMethodAttribute>(inherit: false) is { } attribute)
            {
                return attribute.BindType.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
                    .FirstOrDefault(m => m.Name == attribute.BindMethodName && m.GetParameters() is [{ } first, _]
                        && first.ParameterType == typeof(ServiceBinderBase));
            }
        }

        return null;
    }

    sealed class Binder(ServiceMethodProviderContext<TService> context, MethodSecurity security) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            context.AddUnaryMethod(Strict(method), Metadata(method, out var info),
                security.Guard(method, GrpcOutcomes.Map(method, info.CreateDelegate<UnaryServerMethod<TService, TRequest, TResponse>>())));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler)
        {
            if (typeof(TService) == typeof(SidecarService) && method.Name == nameof(SidecarService.GetWorkItems) && typeof(TRequest) == typeof(GetWorkItemsRequest))
            {
                // Work items go out through their own marshaller (past events already encoded); same wire messages.
                var workItems = new Method<TRequest, OutboundWorkItem>(method.Type, method.ServiceName, method.Name, Strict(method).RequestMarshaller, OutboundWorkItem.Marshaller);
                context.AddServerStreamingMethod(workItems, Metadata(method, out _), security.Guard(method, GrpcOutcomes.Map(method,
                    new ServerStreamingServerMethod<TService, TRequest, OutboundWorkItem>((service, request, stream, call) =>
                        ((SidecarService)(object)service).StreamWorkItems((GetWorkItemsRequest)(object)request, stream, call)))));
                return;
            }

            context.AddServerStreamingMethod(Strict(method), Metadata(method, out var info),
                security.Guard(method, GrpcOutcomes.Map(method, info.CreateDelegate<ServerStreamingServerMethod<TService, TRequest, TResponse>>())));
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddClientStreamingMethod(Strict(method), Metadata(method, out var info),
                security.Guard(method, info.CreateDelegate<ClientStreamingServerMethod<TService, TRequest, TResponse>>()));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddDuplexStreamingMethod(Strict(method), Metadata(method, out var info),
                security.Guard(method, info.CreateDelegate<DuplexStreamingServerMethod<TService, TRequest, TResponse>>()));

        static List<object> Metadata(IMethod method, out MethodInfo handler)
        {
            handler = typeof(TService).GetMethod(method.Name, BindingFlags.Public | BindingFlags.Instance)
                ?? throw new InvalidOperationException($"{typeof(TService).Name} has no method {method.Name}.");
            var metadata = new List<object>();
            metadata.AddRange(typeof(TService).GetCustomAttributes(inherit: true));
            metadata.AddRange(handler.GetCustomAttributes(inherit: true));
            metadata.Add(new HttpMethodMetadata(["POST"], acceptCorsPreflight: true));
            return metadata;
        }

        static Method<TRequest, TResponse> Strict<TRequest, TResponse>(Method<TRequest, TResponse> method)
        {
            var inner = method.RequestMarshaller;
            string type = typeof(TRequest).Name;
            var requests = new Marshaller<TRequest>(inner.ContextualSerializer, context =>
            {
                try
                {
                    return inner.ContextualDeserializer(context);
                }
                catch (Exception ex) when (ex is not RpcException and not OperationCanceledException)
                {
                    throw new RpcException(new Status(StatusCode.InvalidArgument,
                        $"The request is not a valid {type} message ({AccessControl.Sanitize(ex.Message, 200)})."));
                }
            });
            return new Method<TRequest, TResponse>(method.Type, method.ServiceName, method.Name, requests, method.ResponseMarshaller);
        }
    }
}
