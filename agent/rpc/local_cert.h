/*
 * local_cert.h: the credentials of the local admin endpoint on Windows
 * (local_win.c): loopback TCP with mutual TLS, because gRPC 1.51 has no
 * unix sockets on Windows.
 *
 * Three certificates, all EC P-256 and signed with SHA-256, in one folder
 * the agent locks to SYSTEM and Administrators (service_lock_dir):
 *   local-ca.pem                          a CA made for this one agent
 *   local-server.pem, local-server.key    the endpoint's: 127.0.0.1, localhost
 *   local-admin.pem,  local-admin.key     the admin client's (redirectctl)
 * The CA's key signs the two once and is then thrown away, so no one can
 * issue another certificate the endpoint would trust; to renew, the agent
 * makes all of them again. Reading the admin key is what makes a local
 * caller an administrator, as reading a root-only socket would on Linux.
 *
 * Plain OpenSSL (libcrypto), no Windows call: tests/unit runs it on Linux.
 */
#ifndef RA_LOCAL_CERT_H
#define RA_LOCAL_CERT_H

#include <stddef.h>

#define LOCAL_CERT_DAYS  3650 /* validity of a new set */
#define LOCAL_CERT_RENEW 30   /* days before the end at which a start renews the set */

/*
 * Make sure dir holds a usable set: every file present and parsable, the
 * two certificates signed by the CA, each key matching its certificate,
 * none expiring within LOCAL_CERT_RENEW days. Otherwise (first start, a
 * file missing, damaged or replaced) make a new set, overwriting all five
 * files. *made tells which happened (1: new). Returns 0, or -1 with err
 * set naming the file or the OpenSSL step that failed.
 */
int local_cert_ensure(const char *dir, int *made, char *err, size_t errlen);

/*
 * The SHA-256 digest of a certificate (its DER form) given as PEM, into
 * out[32]. Returns 0, or -1 when pem holds no certificate.
 */
int local_cert_digest(const char *pem, size_t len, unsigned char out[32]);

#endif
