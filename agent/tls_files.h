/*
 * The TLS files a configuration names, checked before they are used: by
 * --check-config, at start and before a reload swaps them in. gRPC and
 * nats.c would only say "handshake failed" later, to a peer.
 */
#ifndef RA_TLS_FILES_H
#define RA_TLS_FILES_H

#include <stddef.h>

#include "config.h"

/*
 * 0: every file the configuration names (the remote API's certificate, key
 * and client CA; the fleet's CA, client certificate, key and creds) exists,
 * parses, and each key belongs to its certificate. -1: one does not; err
 * says which and why. 1: all parse, but a certificate has expired or is not
 * valid yet; err says which and when.
 */
int tls_files_check(const struct config *cfg, char *err, size_t errlen);

#endif
