// Shared infrastructure in the resource group: the identity the container apps run as, the registry their images come
// from, Log Analytics for their logs, the Container Apps environment, and the Azure Files share that keeps Redis' data.
@description('Azure region of every resource.')
param location string = resourceGroup().location

@description('Tags applied to every resource.')
param tags object = {}

@description('Object id that gets Contributor on the Container Apps environment; empty for none.')
param principalId string = ''

var resourceToken = uniqueString(resourceGroup().id)

// Built-in role definitions.
var acrPullRole = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')
var contributorRole = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b24988ac-6180-42a0-ab88-20f7382dd24c')

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: 'cr${resourceToken}'
  location: location
  tags: tags
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false
  }
}

// The container apps pull their images with the managed identity, never with registry passwords.
resource identityPullsImages 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, identity.id, acrPullRole)
  scope: registry
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: acrPullRole
  }
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

// Redis' append-only file and snapshots live on an Azure Files share, so they survive restarts and new revisions.
resource volumes 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
    largeFileSharesState: 'Enabled'
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2023-05-01' = {
  parent: volumes
  name: 'default'
}

resource storeShare 'Microsoft.Storage/storageAccounts/fileServices/shares@2023-05-01' = {
  parent: fileService
  name: 'store-data'
  properties: {
    shareQuota: 100
    enabledProtocols: 'SMB'
  }
}

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: 'cae-${resourceToken}'
  location: location
  tags: tags
  properties: {
    workloadProfiles: [
      {
        name: 'consumption'
        workloadProfileType: 'Consumption'
      }
    ]
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }

  resource storeData 'storages' = {
    name: 'store-data'
    properties: {
      azureFile: {
        accountName: volumes.name
        accountKey: volumes.listKeys().keys[0].value
        shareName: storeShare.name
        accessMode: 'ReadWrite'
      }
    }
  }
}

// Traces, metrics and structured logs of the apps (OTLP), as the local AppHost shows them. The component exists only
// in preview API versions.
resource aspireDashboard 'Microsoft.App/managedEnvironments/dotNetComponents@2024-10-02-preview' = {
  parent: environment
  name: 'aspire-dashboard'
  properties: {
    componentType: 'AspireDashboard'
  }
}

resource deployerManagesEnvironment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(environment.id, principalId, contributorRole)
  scope: environment
  properties: {
    principalId: principalId
    roleDefinitionId: contributorRole
  }
}

output MANAGED_IDENTITY_CLIENT_ID string = identity.properties.clientId
output MANAGED_IDENTITY_NAME string = identity.name
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = logs.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.properties.loginServer
output AZURE_CONTAINER_REGISTRY_MANAGED_IDENTITY_ID string = identity.id
output AZURE_CONTAINER_APPS_ENVIRONMENT_NAME string = environment.name
output AZURE_CONTAINER_APPS_ENVIRONMENT_ID string = environment.id
output AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN string = environment.properties.defaultDomain
output AZURE_VOLUMES_STORAGE_ACCOUNT string = volumes.name
output SERVICE_STORE_VOLUME_DATA_NAME string = environment::storeData.name
