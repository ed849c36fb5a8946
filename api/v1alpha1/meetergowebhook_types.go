package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// EventType is a meetergo webhook event type.
//
// The first five have documented payloads; the others are accepted by
// meetergo's API but their payloads are undocumented.
// +kubebuilder:validation:Enum=booking_created;booking_cancelled;booking_rescheduled;new_employee;form_submission;credential_error;review_submitted;review_published;signature_completed
type EventType string

// The event types meetergo can deliver.
const (
	EventBookingCreated     EventType = "booking_created"
	EventBookingCancelled   EventType = "booking_cancelled"
	EventBookingRescheduled EventType = "booking_rescheduled"
	EventNewEmployee        EventType = "new_employee"
	EventFormSubmission     EventType = "form_submission"
	EventCredentialError    EventType = "credential_error"
	EventReviewSubmitted    EventType = "review_submitted"
	EventReviewPublished    EventType = "review_published"
	EventSignatureCompleted EventType = "signature_completed"
)

// DeletionPolicy says what happens to the registration at meetergo when the
// MeetergoWebhook is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeletionPolicy string

const (
	// DeletionPolicyDelete removes the registration at meetergo before the
	// resource goes away.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyOrphan leaves the registration at meetergo in place.
	DeletionPolicyOrphan DeletionPolicy = "Orphan"
)

// Annotations a user sets on a MeetergoWebhook to ask for a one-off action.
// The value is any new string (a timestamp is customary); the operator acts
// once per distinct value. The rotation it handled is recorded in status;
// each receiver replica remembers the replay it handled in its own store.
const (
	// RotateTokenAnnotation asks for a new receiver token: the registration
	// at meetergo is updated and the old token keeps working for a grace period.
	RotateTokenAnnotation = "webhooks.meetergo-operator.io/rotate-token"
	// ReplayDeadLettersAnnotation asks for the resource's dead letters to be
	// delivered again, by every replica that holds some.
	ReplayDeadLettersAnnotation = "webhooks.meetergo-operator.io/replay-dead-letters"
	// ReconcileRequestedAtAnnotation asks for a reconcile now, as Flux's
	// reconcile.fluxcd.io/requestedAt does: the operator lists the company's
	// registrations at meetergo afresh (no cache), repairs any drift, and
	// records the value in status.lastHandledReconcileAt.
	ReconcileRequestedAtAnnotation = "webhooks.meetergo-operator.io/reconcile-requested-at"
)

// MeetergoWebhookSpec is what a team wants from meetergo: which events, on
// whose account, and which Services of this namespace get them.
// +kubebuilder:validation:XValidation:rule="!has(self.targets) || self.targets.all(t, !has(t.eventTypes) || t.eventTypes.all(e, e in self.eventTypes))",message="every targets[].eventTypes entry must also be listed in spec.eventTypes"
type MeetergoWebhookSpec struct {
	// eventTypes are the meetergo events to subscribe to. At least one, no
	// duplicates. Spelling follows meetergo: booking_cancelled has two l's.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	// +listType=set
	EventTypes []EventType `json:"eventTypes"`

	// credentials name the meetergo API credential to register the webhook
	// with. Its company is learned from meetergo; every MeetergoWebhook whose
	// credential belongs to the same company shares that company's six
	// webhook slots.
	// +required
	Credentials Credentials `json:"credentials"`

	// description is shown in meetergo's dashboard next to the webhook. The
	// operator appends an ownership marker to it; the description itself may
	// not contain marker text.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:XValidation:rule="!self.contains('[k8s meetergo-operator uid=')",message="description must not contain '[k8s meetergo-operator uid=': the operator appends its own ownership marker, and marker text in a description could claim another resource's registration"
	Description string `json:"description,omitempty"`

	// targets are the Services in this namespace that receive each event.
	// Without targets, events are still recorded as Kubernetes Events.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Targets []Target `json:"targets,omitempty"`

	// delivery tunes how events are forwarded to the targets.
	// +optional
	// +kubebuilder:default={}
	Delivery DeliverySpec `json:"delivery,omitempty"`

	// receiverURL overrides the operator's public receiver URL (its
	// --receiver-public-url flag) for this resource: the URL meetergo can
	// reach the operator's receiver at. The operator appends a path with a
	// secret token. Must be https:// unless the operator allows plain http.
	// +optional
	// +kubebuilder:validation:MaxLength=2000
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.startsWith('http://')",message="receiverURL must be an absolute http(s) URL"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?') && !self.contains('#')",message="receiverURL must not carry a query or fragment"
	ReceiverURL string `json:"receiverURL,omitempty"`

	// deletionPolicy says what happens to the registration at meetergo when
	// this resource is deleted: Delete removes it, Orphan leaves it in place
	// (use Orphan when the credential is gone and deletion would otherwise wait).
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// suspend stops every call to meetergo for this resource. Events that
	// still arrive are accepted and kept, and forwarded once resumed.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// Credentials point at the Secret holding a meetergo API credential.
type Credentials struct {
	// secretRef names a Secret in this namespace. Its key `token` holds a
	// personal access token (rgo-...) or a platform API key
	// (ak_live:...); a platform key also needs the key `userId`, the uuid of
	// the meetergo user it acts for.
	// +required
	SecretRef LocalSecretReference `json:"secretRef"`
}

// LocalSecretReference names a Secret in the resource's namespace.
type LocalSecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// SecretKeyReference names one key of a Secret in the resource's namespace.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key in the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// Target is a Service in the resource's namespace that gets events.
type Target struct {
	// service is the Service to POST events to.
	// +required
	Service ServiceReference `json:"service"`

	// path is the HTTP path on the Service, starting with "/". Defaults to "/".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="path must start with '/'"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="path must not contain a fragment"
	Path string `json:"path,omitempty"`

	// eventTypes limits this target to some of spec.eventTypes. Empty means
	// every event type of the resource.
	// +optional
	// +kubebuilder:validation:MaxItems=9
	// +listType=set
	EventTypes []EventType `json:"eventTypes,omitempty"`
}

// ServiceReference names a Service port in the resource's namespace. There is
// deliberately no namespace field: a resource forwards only within its own
// namespace.
type ServiceReference struct {
	// name of the Service.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// port of the Service, by name (as in the Service's spec.ports[].name) or
	// by number (spec.ports[].port).
	// +required
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 1 && self <= 65535) : (size(self) >= 1 && size(self) <= 15)",message="port must be a number from 1 to 65535 or a Service port name of at most 15 characters"
	Port intstr.IntOrString `json:"port"`
}

// DeliverySpec tunes forwarding to the targets.
type DeliverySpec struct {
	// timeout for one POST to a target, from 1s to 5m.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('5m')",message="timeout must be between 1s and 5m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// maxAttempts is how often an event is offered to a target before it is
	// kept as a dead letter. Retries back off exponentially (with jitter) and
	// honour Retry-After.
	// +optional
	// +kubebuilder:default=12
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	MaxAttempts int32 `json:"maxAttempts,omitempty"`

	// signingSecretRef names a Secret key whose value signs every forwarded
	// request with a webhook-signature header in the Standard Webhooks format
	// (HMAC-SHA256), so a target can prove the request came from the operator.
	// +optional
	SigningSecretRef *SecretKeyReference `json:"signingSecretRef,omitempty"`
}

// Condition types of a MeetergoWebhook.
const (
	// ConditionReady is True when the webhook is registered at meetergo and
	// its targets can be reached.
	ConditionReady = "Ready"
	// ConditionRegistered is True when meetergo holds a registration that
	// matches the spec.
	ConditionRegistered = "Registered"
	// ConditionTargetsReady is True when every target Service has a ready
	// endpoint for its port.
	ConditionTargetsReady = "TargetsReady"
	// ConditionStalled is True when the operator cannot make progress until
	// the spec or the credential Secret changes.
	ConditionStalled = "Stalled"
)

// MeetergoWebhookStatus is what the operator observed and did. Nothing secret
// is kept here: the receiver token is masked and credentials never appear.
type MeetergoWebhookStatus struct {
	// observedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Registered, TargetsReady and Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// webhookID is the id of the registration at meetergo.
	// +optional
	WebhookID string `json:"webhookID,omitempty"`

	// companyID is the meetergo company the credential belongs to.
	// +optional
	CompanyID string `json:"companyID,omitempty"`

	// endpoint is the URL registered at meetergo, with its secret token masked.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// eventTypes are the event types meetergo confirmed for the registration.
	// +optional
	// +listType=atomic
	EventTypes []EventType `json:"eventTypes,omitempty"`

	// lastSyncTime is when the registration was last compared with meetergo.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// tokenGeneration counts receiver token rotations; the token is derived
	// from it, the resource's UID and a key only the operator holds.
	// +optional
	TokenGeneration int64 `json:"tokenGeneration,omitempty"`

	// tokenRotatedAt is when the current token replaced the previous one;
	// the previous one is accepted for a grace period after it.
	// +optional
	TokenRotatedAt *metav1.Time `json:"tokenRotatedAt,omitempty"`

	// lastHandledRotateToken is the value of the rotate-token annotation
	// that was last acted on.
	// +optional
	LastHandledRotateToken string `json:"lastHandledRotateToken,omitempty"`

	// slotHeld is true once the resource holds one of its company's webhook
	// slots. It stays true while a registration deleted at meetergo is made
	// again, so the resource keeps its place ahead of waiting resources, also
	// across an operator restart; it ends when the resource stalls.
	// +optional
	SlotHeld bool `json:"slotHeld,omitempty"`

	// lastHandledReconcileAt is the value of the reconcile-requested-at
	// annotation that was last carried out (a fresh list at meetergo and a
	// drift repair).
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// delivery counts what the receiver did with this resource's events.
	// +optional
	Delivery DeliveryStatus `json:"delivery,omitempty"`
}

// DeliveryStatus counts events received and forwarded for a resource. It is
// updated every few seconds, not once per event.
type DeliveryStatus struct {
	// received counts events accepted from meetergo.
	// +optional
	Received int64 `json:"received,omitempty"`
	// forwarded counts deliveries that a target acknowledged with 2xx.
	// +optional
	Forwarded int64 `json:"forwarded,omitempty"`
	// failed counts delivery attempts that did not succeed.
	// +optional
	Failed int64 `json:"failed,omitempty"`
	// deadLettered counts deliveries kept as dead letters after their last attempt.
	// +optional
	DeadLettered int64 `json:"deadLettered,omitempty"`
	// lastEventTime is when the last event was accepted.
	// +optional
	LastEventTime *metav1.Time `json:"lastEventTime,omitempty"`
	// lastError describes the last failed delivery (target and status, no payload).
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// MeetergoWebhook registers a webhook at meetergo and forwards its events to
// Services in the same namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mgwh,categories=meetergo
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Webhook",type=string,JSONPath=`.status.webhookID`
// +kubebuilder:printcolumn:name="Events",type=string,JSONPath=`.spec.eventTypes`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeetergoWebhook struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the team wants.
	// +required
	Spec MeetergoWebhookSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status MeetergoWebhookStatus `json:"status,omitempty"`
}

// MeetergoWebhookList is a list of MeetergoWebhooks.
//
// +kubebuilder:object:root=true
type MeetergoWebhookList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeetergoWebhook `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MeetergoWebhook{}, &MeetergoWebhookList{})
}
