/*
 * fwps_decl.h: the kernel-mode WFP declarations callout.c uses, WRITTEN BY
 * HAND FROM MICROSOFT'S PUBLISHED DOCUMENTATION (fwpsk.h, fwpstypes.h,
 * fwptypes.h reference pages on learn.microsoft.com), for one purpose: to
 * compile-check callout.c with mingw-w64, which ships no fwpsk.h.
 *
 * Never checked against the WDK's headers. Layouts follow the documented
 * member order for the members up to those callout.c reads, but a driver
 * built with these would be wrong wherever the documentation is: build the
 * driver with the WDK (RA_WDK), whose headers replace this file.
 */
#ifndef RA_FWPS_DECL_H
#define RA_FWPS_DECL_H

#include <ntddk.h>

typedef ULONG DWORD; /* minwindef.h: user mode's name, used by fwpsk.h */

/* ---- ws2def.h / ws2ipdef.h, as far as used ---- */
typedef USHORT ADDRESS_FAMILY;
#ifndef AF_INET
#define AF_INET  2
#define AF_INET6 23
#endif
typedef struct sockaddr_storage_ {
	ADDRESS_FAMILY ss_family;
	CHAR __ss_pad1[6];
	__int64 __ss_align;
	CHAR __ss_pad2[112];
} SOCKADDR_STORAGE;
typedef struct {
	union {
		ULONG Value;
		UCHAR Zone : 4;
	};
} SCOPE_ID;

/* ---- fwptypes.h ---- */
typedef enum FWP_DATA_TYPE_ {
	FWP_EMPTY = 0,
	FWP_UINT8 = 1,
	FWP_UINT16 = 2,
	FWP_UINT32 = 3,
	FWP_UINT64 = 4,
	FWP_BYTE_ARRAY16_TYPE = 11,
	FWP_BYTE_BLOB_TYPE = 12,
} FWP_DATA_TYPE;

typedef struct FWP_BYTE_ARRAY16_ {
	UINT8 byteArray16[16];
} FWP_BYTE_ARRAY16;

typedef struct FWP_BYTE_BLOB_ {
	UINT32 size;
	UINT8 *data;
} FWP_BYTE_BLOB;

typedef struct FWP_VALUE0_ {
	FWP_DATA_TYPE type;
	union {
		UINT8 uint8;
		UINT16 uint16;
		UINT32 uint32;
		UINT64 *uint64;
		INT8 int8;
		INT16 int16;
		INT32 int32;
		INT64 *int64;
		float float32;
		double *double64;
		FWP_BYTE_ARRAY16 *byteArray16;
		FWP_BYTE_BLOB *byteBlob;
	};
} FWP_VALUE0;

typedef UINT32 FWP_ACTION_TYPE;
#define FWP_ACTION_FLAG_TERMINATING     0x00001000
#define FWP_ACTION_FLAG_NON_TERMINATING 0x00002000
#define FWP_ACTION_BLOCK                (0x1 | FWP_ACTION_FLAG_TERMINATING)
#define FWP_ACTION_PERMIT               (0x2 | FWP_ACTION_FLAG_TERMINATING)
#define FWP_ACTION_CONTINUE             (0x6 | FWP_ACTION_FLAG_NON_TERMINATING)

/* ---- fwpsk.h ---- */
typedef struct FWPS_INCOMING_VALUE0_ {
	FWP_VALUE0 value;
} FWPS_INCOMING_VALUE0;

typedef struct FWPS_INCOMING_VALUES0_ {
	UINT16 layerId;
	UINT32 valueCount;
	FWPS_INCOMING_VALUE0 *incomingValue;
} FWPS_INCOMING_VALUES0;

/* FWPS_FIELDS_ALE_CONNECT_REDIRECT_V4 / _V6: the same order for both. */
enum {
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_ALE_APP_ID,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_ALE_USER_ID,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_LOCAL_ADDRESS,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_LOCAL_ADDRESS_TYPE,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_LOCAL_PORT,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_PROTOCOL,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_REMOTE_ADDRESS,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_DESTINATION_ADDRESS_TYPE,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V4_IP_REMOTE_PORT,
};
enum {
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_ALE_APP_ID,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_ALE_USER_ID,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_LOCAL_ADDRESS,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_LOCAL_ADDRESS_TYPE,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_LOCAL_PORT,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_PROTOCOL,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_REMOTE_ADDRESS,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_DESTINATION_ADDRESS_TYPE,
	FWPS_FIELD_ALE_CONNECT_REDIRECT_V6_IP_REMOTE_PORT,
};

typedef struct FWPS_DISCARD_METADATA0_ {
	UINT32 discardModule;
	UINT32 discardReason;
	UINT64 filterId;
} FWPS_DISCARD_METADATA0;

typedef struct FWPS_INBOUND_FRAGMENT_METADATA0_ {
	UINT32 fragmentIdentification;
	UINT16 fragmentOffset;
	ULONG fragmentLength;
} FWPS_INBOUND_FRAGMENT_METADATA0;

typedef struct {
	UINT8 prefix[28]; /* SOCKADDR_INET */
	UINT8 prefixLength;
} RA_IP_ADDRESS_PREFIX;

/* Documented members up to redirectRecords (Windows 8); the rest omitted. */
typedef struct FWPS_INCOMING_METADATA_VALUES0_ {
	UINT32 currentMetadataValues;
	UINT32 flags;
	UINT64 reserved;
	FWPS_DISCARD_METADATA0 discardMetadata;
	UINT64 flowHandle;
	UINT32 ipHeaderSize;
	UINT32 transportHeaderSize;
	FWP_BYTE_BLOB *processPath;
	UINT64 token;
	UINT64 processId;
	UINT32 sourceInterfaceIndex;
	UINT32 destinationInterfaceIndex;
	ULONG compartmentId;
	FWPS_INBOUND_FRAGMENT_METADATA0 fragmentMetadata;
	ULONG pathMtu;
	HANDLE completionHandle;
	UINT64 transportEndpointHandle;
	SCOPE_ID remoteScopeId;
	void *controlData;
	ULONG controlDataLength;
	UINT32 packetDirection;
	void *headerIncludeHeader;
	ULONG headerIncludeHeaderLength;
	RA_IP_ADDRESS_PREFIX destinationPrefix;
	UINT16 frameLength;
	UINT64 parentEndpointHandle;
	UINT32 icmpIdAndSequence;
	DWORD localRedirectTargetPID;
	void *originalDestination;
	HANDLE redirectRecords;
} FWPS_INCOMING_METADATA_VALUES0;

#define FWPS_METADATA_FIELD_PROCESS_ID             0x00000020
#define FWPS_METADATA_FIELD_REDIRECT_RECORD_HANDLE 0x40000000
#define FWPS_IS_METADATA_FIELD_PRESENT(m, f)       (((m)->currentMetadataValues & (f)) == (f))

#define FWPS_RIGHT_ACTION_WRITE 0x00000001

typedef struct FWPS_CLASSIFY_OUT0_ {
	FWP_ACTION_TYPE actionType;
	UINT64 outContext;
	UINT64 filterId;
	UINT32 rights;
	UINT32 flags;
	UINT32 reserved;
} FWPS_CLASSIFY_OUT0;

typedef struct FWPS_FILTER_CONDITION0_ FWPS_FILTER_CONDITION0; /* not read here */
typedef struct FWPM_PROVIDER_CONTEXT1_ FWPM_PROVIDER_CONTEXT1;

typedef struct FWPS_ACTION0_ {
	FWP_ACTION_TYPE type;
	UINT32 calloutId;
} FWPS_ACTION0;

typedef struct FWPS_FILTER1_ {
	UINT64 filterId;
	FWP_VALUE0 weight;
	UINT16 subLayerWeight;
	UINT16 flags;
	UINT32 numFilterConditions;
	FWPS_FILTER_CONDITION0 *filterCondition;
	FWPS_ACTION0 action;
	UINT64 context; /* the management filter's rawContext */
	FWPM_PROVIDER_CONTEXT1 *providerContext;
} FWPS_FILTER1;

typedef enum FWPS_CALLOUT_NOTIFY_TYPE_ {
	FWPS_CALLOUT_NOTIFY_ADD_FILTER,
	FWPS_CALLOUT_NOTIFY_DELETE_FILTER,
	FWPS_CALLOUT_NOTIFY_ADD_FILTER_POST_COMMIT,
	FWPS_CALLOUT_NOTIFY_TYPE_MAX
} FWPS_CALLOUT_NOTIFY_TYPE;

typedef void(NTAPI *FWPS_CALLOUT_CLASSIFY_FN1)(const FWPS_INCOMING_VALUES0 *inFixedValues,
    const FWPS_INCOMING_METADATA_VALUES0 *inMetaValues, void *layerData,
    const void *classifyContext, const FWPS_FILTER1 *filter, UINT64 flowContext,
    FWPS_CLASSIFY_OUT0 *classifyOut);
typedef NTSTATUS(NTAPI *FWPS_CALLOUT_NOTIFY_FN1)(
    FWPS_CALLOUT_NOTIFY_TYPE notifyType, const GUID *filterKey, FWPS_FILTER1 *filter);
typedef void(NTAPI *FWPS_CALLOUT_FLOW_DELETE_NOTIFY_FN0)(
    UINT16 layerId, UINT32 calloutId, UINT64 flowContext);

typedef struct FWPS_CALLOUT1_ {
	GUID calloutKey;
	UINT32 flags;
	FWPS_CALLOUT_CLASSIFY_FN1 classifyFn;
	FWPS_CALLOUT_NOTIFY_FN1 notifyFn;
	FWPS_CALLOUT_FLOW_DELETE_NOTIFY_FN0 flowDeleteFn;
} FWPS_CALLOUT1;

typedef struct FWPS_CONNECT_REQUEST0_ {
	SOCKADDR_STORAGE localAddressAndPort;
	SOCKADDR_STORAGE remoteAddressAndPort;
	UINT64 portReservationToken;
	DWORD localRedirectTargetPID;
	struct FWPS_CONNECT_REQUEST0_ *previousVersion;
	UINT64 modifierFilterId;
	HANDLE localRedirectHandle;
	void *localRedirectContext;
	SIZE_T localRedirectContextSize;
} FWPS_CONNECT_REQUEST0;

typedef enum FWPS_CONNECTION_REDIRECT_STATE_ {
	FWPS_CONNECTION_NOT_REDIRECTED = 0,
	FWPS_CONNECTION_REDIRECTED_BY_SELF = 1,
	FWPS_CONNECTION_REDIRECTED_BY_OTHER = 2,
	FWPS_CONNECTION_PREVIOUSLY_REDIRECTED_BY_SELF = 3,
	FWPS_CONNECTION_REDIRECT_STATE_MAX
} FWPS_CONNECTION_REDIRECT_STATE;

/* fwpkclnt.sys exports */
NTSTATUS NTAPI FwpsCalloutRegister1(
    void *deviceObject, const FWPS_CALLOUT1 *callout, UINT32 *calloutId);
NTSTATUS NTAPI FwpsCalloutUnregisterById0(const UINT32 calloutId);
NTSTATUS NTAPI FwpsRedirectHandleCreate0(
    const GUID *providerGuid, UINT32 flags, HANDLE *redirectHandle);
void NTAPI FwpsRedirectHandleDestroy0(HANDLE redirectHandle);
FWPS_CONNECTION_REDIRECT_STATE NTAPI FwpsQueryConnectionRedirectState0(
    HANDLE redirectRecords, HANDLE redirectHandle, void **redirectContext);
NTSTATUS NTAPI FwpsAcquireClassifyHandle0(
    void *classifyContext, UINT32 reserved, UINT64 *classifyHandle);
void NTAPI FwpsReleaseClassifyHandle0(UINT64 classifyHandle);
NTSTATUS NTAPI FwpsAcquireWritableLayerDataPointer0(UINT64 classifyHandle, UINT64 filterId,
    UINT32 flags, void **writableLayerData, FWPS_CLASSIFY_OUT0 *classifyOut);
void NTAPI FwpsApplyModifiedLayerData0(
    UINT64 classifyHandle, void *modifiedLayerData, UINT32 flags);

#endif
