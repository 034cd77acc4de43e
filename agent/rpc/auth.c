/*
 * auth.c: who is calling. Kept apart from the gRPC plumbing so the mapping
 * from certificate identity to role reads (and is tested) on its own.
 */
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "rpc_internal.h"

enum rpc_role
rpc_role_of_identity(const struct config *cfg, const char *id, size_t len)
{
	for (size_t i = 0; i < cfg->n_admins; i++)
		if (strlen(cfg->admins[i]) == len && memcmp(cfg->admins[i], id, len) == 0)
			return RPC_ROLE_ADMIN;
	for (size_t i = 0; i < cfg->n_readers; i++)
		if (strlen(cfg->readers[i]) == len && memcmp(cfg->readers[i], id, len) == 0)
			return RPC_ROLE_READER;
	return RPC_ROLE_NONE;
}

/*
 * The best role among the values of one property (a certificate may carry
 * several SANs). Returns -1 when the property is absent, RPC_ROLE_NONE when
 * it is present but no value has a role.
 */
static int
role_of_property(const struct config *cfg, const grpc_auth_context *ctx, const char *name,
    char *who, size_t wholen)
{
	grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ctx, name);
	const grpc_auth_property *p;
	int best = -1;

	while ((p = grpc_auth_property_iterator_next(&it)) != NULL) {
		enum rpc_role r = rpc_role_of_identity(cfg, p->value, p->value_length);

		if ((int)r > best) {
			best = (int)r;
			snprintf(who, wholen, "%.*s", (int)p->value_length, p->value);
		}
	}
	return best;
}

enum rpc_role
rpc_role_of(const struct config *cfg, grpc_call *call, char *who, size_t wholen)
{
	grpc_auth_context *ctx = grpc_call_auth_context(call);
	grpc_auth_property_iterator it;
	const grpc_auth_property *p;
	int tls = 0, r;

	snprintf(who, wholen, "local socket");
	if (ctx == NULL)
		return RPC_ROLE_ADMIN; /* the only insecure listener is the uid-checked socket */
	it = grpc_auth_context_find_properties_by_name(
	    ctx, GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
	while ((p = grpc_auth_property_iterator_next(&it)) != NULL)
		if (p->value_length == 3 && memcmp(p->value, "ssl", 3) == 0)
			tls = 1;
	if (!tls) {
		grpc_auth_context_release(ctx);
		return RPC_ROLE_ADMIN;
	}
	if (rpc_local_is_admin(ctx)) { /* Windows' local endpoint */
		snprintf(who, wholen, "local admin");
		grpc_auth_context_release(ctx);
		return RPC_ROLE_ADMIN;
	}
	snprintf(who, wholen, "a certificate with no identity");
	/* The identity is the subjectAltName values; the CN only when there is
	 * no SAN at all (RFC 6125): a certificate for "stranger" does not
	 * become "console-admin" through its CN. */
	r = role_of_property(cfg, ctx, GRPC_X509_SAN_PROPERTY_NAME, who, wholen);
	if (r < 0)
		r = role_of_property(cfg, ctx, GRPC_X509_CN_PROPERTY_NAME, who, wholen);
	grpc_auth_context_release(ctx);
	return r > 0 ? (enum rpc_role)r : RPC_ROLE_NONE;
}
