using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Protocol;

public sealed class SidecarService : TaskHubSidecarService.TaskHubSidecarServiceBase
{
}
