/*
 * callout.c: redirect-agent's WFP callout driver, the kernel half of the
 * Windows redirect. NEVER BUILT WITH THE WDK, NEVER LOADED, NEVER RUN
 * ANYWHERE: it is compile-checked with mingw-w64 against declarations
 * written from Microsoft's documentation (fwps_decl.h). See BUILD.md.
 *
 * The agent (agent/os/wfp_filters.c) owns the filters; this driver only
 * registers the two callouts they name (keys in agent/os/wfp_keys.h) at
 * FWPS_LAYER_ALE_CONNECT_REDIRECT_V4 and _V6, and for each connection a
 * callout filter hands it:
 *   - leaves it alone when it is the agent's own (its process id, or
 *     FwpsQueryConnectionRedirectState0 says this driver redirected it
 *     before: the agent sets the records on its upstream sockets);
 *   - otherwise redirects it to the agent's listener on loopback
 *     (FwpsRedirectHandleCreate0's handle, localRedirectTargetPID = the
 *     agent) with a redirect context of two SOCKADDR_STORAGE, the original
 *     remote then the original local address: what the agent reads with
 *     SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT (redirect_wfp.c).
 * The agent's process id and listener port come with each filter, in its
 * context (FWPM_FILTER0.rawContext): pid << 32 | v6 << 16 | port.
 */
#ifdef RA_WDK
#include <ntddk.h>
#define NDIS61 1
#include <fwpsk.h>
#include <ndis.h>
#else
#include "fwps_decl.h"
#endif
#include <guiddef.h>

#include "wfp_keys.h"

#define RA_POOL_TAG 0x52417261u /* "arAR" in a pool dump */

/* What the agent reads back: the original remote, then the original local address. */
struct ra_redirect_context {
	SOCKADDR_STORAGE remote;
	SOCKADDR_STORAGE local;
};

/* sockaddr_in and sockaddr_in6 as laid out in a SOCKADDR_STORAGE (ws2def.h, ws2ipdef.h). */
struct ra_sin {
	ADDRESS_FAMILY family;
	UINT8 port[2]; /* network order */
	UINT8 addr[4];
};
struct ra_sin6 {
	ADDRESS_FAMILY family;
	UINT8 port[2];
	UINT32 flowinfo;
	UINT8 addr[16];
	UINT32 scope_id;
};

static PDEVICE_OBJECT ra_device;
static HANDLE ra_redirect_handle;
static UINT32 ra_callout_v4, ra_callout_v6;

DRIVER_INITIALIZE DriverEntry;
static DRIVER_UNLOAD ra_unload;

static void
set_sin(SOCKADDR_STORAGE *ss, const UINT8 addr[4], UINT16 port)
{
	struct ra_sin *s = (struct ra_sin *)ss;

	RtlZeroMemory(ss, sizeof(*ss));
	s->family = AF_INET;
	s->port[0] = (UINT8)(port >> 8);
	s->port[1] = (UINT8)port;
	RtlCopyMemory(s->addr, addr, 4);
}

static void
set_sin6(SOCKADDR_STORAGE *ss, const UINT8 addr[16], UINT16 port)
{
	struct ra_sin6 *s = (struct ra_sin6 *)ss;

	RtlZeroMemory(ss, sizeof(*ss));
	s->family = AF_INET6;
	s->port[0] = (UINT8)(port >> 8);
	s->port[1] = (UINT8)port;
	RtlCopyMemory(s->addr, addr, 16);
}

/* An IPv4 address as WFP gives it (a UINT32 in host order), as bytes. */
static void
v4_bytes(UINT32 host, UINT8 out[4])
{
	out[0] = (UINT8)(host >> 24);
	out[1] = (UINT8)(host >> 16);
	out[2] = (UINT8)(host >> 8);
	out[3] = (UINT8)host;
}

/* The connection's original addresses, from the layer's incoming values. */
static int
original_addresses(const FWPS_INCOMING_VALUES0 *in, int v6, struct ra_redirect_context *ctx)
{
	const FWPS_INCOMING_VALUE0 *v = in->incomingValue;

	if (in->valueCount <= FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_REMOTE_PORT)
		return -1;
	if (!v6) {
		UINT8 a[4];

		v4_bytes(v[FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_REMOTE_ADDRESS].value.uint32, a);
		set_sin(&ctx->remote, a,
		    v[FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_REMOTE_PORT].value.uint16);
		v4_bytes(v[FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_LOCAL_ADDRESS].value.uint32, a);
		set_sin(&ctx->local, a,
		    v[FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_LOCAL_PORT].value.uint16);
		return 0;
	}
	if (v[FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_REMOTE_ADDRESS].value.byteArray16 == NULL ||
	    v[FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_LOCAL_ADDRESS].value.byteArray16 == NULL)
		return -1;
	set_sin6(&ctx->remote,
	    v[FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_REMOTE_ADDRESS].value.byteArray16->byteArray16,
	    v[FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_REMOTE_PORT].value.uint16);
	set_sin6(&ctx->local,
	    v[FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_LOCAL_ADDRESS].value.byteArray16->byteArray16,
	    v[FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_LOCAL_PORT].value.uint16);
	return 0;
}

/* Whether this connection is the agent's own, or one this driver redirected before. */
static int
is_ours(const FWPS_INCOMING_METADATA_VALUES0 *meta, UINT32 agent_pid)
{
	FWPS_CONNECTION_REDIRECT_STATE st = FWPS_CONNECTION_NOT_REDIRECTED;

	if (FWPS_IS_METADATA_FIELD_PRESENT(meta, FWPS_METADATA_FIELD_PROCESS_ID) &&
	    meta->processId == agent_pid)
		return 1;
	if (FWPS_IS_METADATA_FIELD_PRESENT(meta, FWPS_METADATA_FIELD_REDIRECT_RECORD_HANDLE))
		st = FwpsQueryConnectionRedirectState0(
		    meta->redirectRecords, ra_redirect_handle, NULL);
	return st == FWPS_CONNECTION_REDIRECTED_BY_SELF ||
	       st == FWPS_CONNECTION_PREVIOUSLY_REDIRECTED_BY_SELF;
}

static void NTAPI
ra_classify(const FWPS_INCOMING_VALUES0 *in, const FWPS_INCOMING_METADATA_VALUES0 *meta,
    void *layer_data, const void *classify_context, const FWPS_FILTER1 *filter, UINT64 flow_context,
    FWPS_CLASSIFY_OUT0 *out)
{
	static const UINT8 lo4[4] = {127, 0, 0, 1}, lo6[16] = {[15] = 1};
	UINT32 agent_pid = (UINT32)(filter->context >> 32);
	UINT16 port = (UINT16)(filter->context & 0xffff);
	int v6 = (int)((filter->context >> 16) & 1);
	struct ra_redirect_context *ctx;
	FWPS_CONNECT_REQUEST0 *req = NULL;
	UINT64 handle = 0;

	(void)layer_data, (void)flow_context;
	if ((out->rights & FWPS_RIGHT_ACTION_WRITE) == 0)
		return;                        /* a higher-weight filter has decided */
	out->actionType = FWP_ACTION_CONTINUE; /* no opinion unless we redirect */
	if (agent_pid == 0 || port == 0 || classify_context == NULL || is_ours(meta, agent_pid))
		return;
	ctx = ExAllocatePoolWithTag(NonPagedPoolNx, sizeof(*ctx), RA_POOL_TAG);
	if (ctx == NULL)
		return;
	if (original_addresses(in, v6, ctx) != 0 ||
	    !NT_SUCCESS(FwpsAcquireClassifyHandle0((void *)classify_context, 0, &handle))) {
		ExFreePoolWithTag(ctx, RA_POOL_TAG);
		return;
	}
	if (!NT_SUCCESS(FwpsAcquireWritableLayerDataPointer0(
		handle, filter->filterId, 0, (void **)&req, out))) {
		ExFreePoolWithTag(ctx, RA_POOL_TAG);
		FwpsReleaseClassifyHandle0(handle);
		return;
	}
	if (v6)
		set_sin6(&req->remoteAddressAndPort, lo6, port);
	else
		set_sin(&req->remoteAddressAndPort, lo4, port);
	req->localRedirectTargetPID = agent_pid; /* loopback: the agent's own listener */
	req->localRedirectHandle = ra_redirect_handle;
	req->localRedirectContext = ctx; /* WFP frees it with the connection */
	req->localRedirectContextSize = sizeof(*ctx);
	FwpsApplyModifiedLayerData0(handle, req, 0);
	FwpsReleaseClassifyHandle0(handle);
	out->actionType = FWP_ACTION_PERMIT;
	out->rights &= ~FWPS_RIGHT_ACTION_WRITE;
}

static NTSTATUS NTAPI
ra_notify(FWPS_CALLOUT_NOTIFY_TYPE type, const GUID *filter_key, FWPS_FILTER1 *filter)
{
	(void)type, (void)filter_key, (void)filter;
	return STATUS_SUCCESS;
}

static NTSTATUS
register_callout(const GUID *key, UINT32 *id)
{
	FWPS_CALLOUT1 c;

	RtlZeroMemory(&c, sizeof(c));
	c.calloutKey = *key;
	c.classifyFn = ra_classify;
	c.notifyFn = ra_notify;
	return FwpsCalloutRegister1(ra_device, &c, id);
}

static void
ra_unload(PDRIVER_OBJECT driver)
{
	(void)driver;
	if (ra_callout_v6 != 0)
		FwpsCalloutUnregisterById0(ra_callout_v6);
	if (ra_callout_v4 != 0)
		FwpsCalloutUnregisterById0(ra_callout_v4);
	if (ra_redirect_handle != NULL)
		FwpsRedirectHandleDestroy0(ra_redirect_handle);
	if (ra_device != NULL)
		IoDeleteDevice(ra_device);
	ra_callout_v4 = ra_callout_v6 = 0;
	ra_redirect_handle = NULL;
	ra_device = NULL;
}

NTSTATUS
DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry_path)
{
	NTSTATUS st;

	(void)registry_path;
	driver->DriverUnload = ra_unload;
	st = IoCreateDevice(
	    driver, 0, NULL, FILE_DEVICE_NETWORK, FILE_DEVICE_SECURE_OPEN, FALSE, &ra_device);
	if (NT_SUCCESS(st))
		st = FwpsRedirectHandleCreate0(&RA_WFP_PROVIDER, 0, &ra_redirect_handle);
	if (NT_SUCCESS(st))
		st = register_callout(&RA_WFP_CALLOUT_V4, &ra_callout_v4);
	if (NT_SUCCESS(st))
		st = register_callout(&RA_WFP_CALLOUT_V6, &ra_callout_v6);
	if (!NT_SUCCESS(st))
		ra_unload(driver);
	return st;
}
