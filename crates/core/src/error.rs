use berth_wire::ApiError;

/// The errors ECS operations answer, named after the modeled exceptions.
/// `aws_code()` and `http_status_code()` are what goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcsError {
    #[error("{0}")]
    Client(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("Cluster not found.")]
    ClusterNotFound,
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("The Cluster cannot be deleted while Services are active.")]
    ClusterContainsServices,
    #[error("The Cluster cannot be deleted while Container Instances are active or draining.")]
    ClusterContainsContainerInstances,
    #[error("The Cluster cannot be deleted while Tasks are active.")]
    ClusterContainsTasks,
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    TargetNotFound(String),
    #[error("{0}")]
    AttributeLimitExceeded(String),
    #[error("{0}")]
    UnsupportedFeature(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("Service not found.")]
    ServiceNotFound,
    #[error("Service was not ACTIVE.")]
    ServiceNotActive,
    #[error("{0}")]
    PlatformUnknown(String),
    #[error("{0}")]
    PlatformTaskDefinitionIncompatibility(String),
    #[error("{0}")]
    TaskSetNotFound(String),
    #[error("{0}")]
    ServiceDeploymentNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NamespaceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    Server(String),
}

impl EcsError {
    pub fn aws_code(&self) -> &'static str {
        match self {
            EcsError::Client(_) => "ClientException",
            EcsError::InvalidParameter(_) => "InvalidParameterException",
            EcsError::ClusterNotFound => "ClusterNotFoundException",
            EcsError::ResourceNotFound(_) => "ResourceNotFoundException",
            EcsError::ClusterContainsServices => "ClusterContainsServicesException",
            EcsError::ClusterContainsContainerInstances => {
                "ClusterContainsContainerInstancesException"
            }
            EcsError::ClusterContainsTasks => "ClusterContainsTasksException",
            EcsError::LimitExceeded(_) => "LimitExceededException",
            EcsError::TargetNotFound(_) => "TargetNotFoundException",
            EcsError::AttributeLimitExceeded(_) => "AttributeLimitExceededException",
            EcsError::UnsupportedFeature(_) => "UnsupportedFeatureException",
            EcsError::AccessDenied(_) => "AccessDeniedException",
            EcsError::ServiceNotFound => "ServiceNotFoundException",
            EcsError::ServiceNotActive => "ServiceNotActiveException",
            EcsError::PlatformUnknown(_) => "PlatformUnknownException",
            EcsError::PlatformTaskDefinitionIncompatibility(_) => {
                "PlatformTaskDefinitionIncompatibilityException"
            }
            EcsError::TaskSetNotFound(_) => "TaskSetNotFoundException",
            EcsError::ServiceDeploymentNotFound(_) => "ServiceDeploymentNotFoundException",
            EcsError::Conflict(_) => "ConflictException",
            EcsError::NamespaceNotFound(_) => "NamespaceNotFoundException",
            EcsError::ResourceInUse(_) => "ResourceInUseException",
            EcsError::Server(_) => "ServerException",
        }
    }

    /// ECS answers every modeled client error with 400 and `ServerException`
    /// (the model's only fault) with 500.
    pub fn http_status_code(&self) -> u16 {
        match self {
            EcsError::Server(_) => 500,
            _ => 400,
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        EcsError::InvalidParameter(msg.into())
    }

    pub fn client(msg: impl Into<String>) -> Self {
        EcsError::Client(msg.into())
    }
}

impl From<EcsError> for ApiError {
    fn from(e: EcsError) -> Self {
        ApiError::new(e.aws_code(), e.http_status_code(), e.to_string())
    }
}
