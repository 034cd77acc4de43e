/*
 * The configuration's TLS files, parsed with OpenSSL (which gRPC and nats.c
 * use underneath): a certificate chain, its key, a CA bundle.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "err.h"
#include "tls_files.h"

/* Larger than any certificate bundle an operator means to configure. */
#define TLS_FILE_MAX (1 << 20)

static BIO *
open_pem(const char *key, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rbe");
	long size;
	BIO *b;

	if (f == NULL) {
		snprintf(err, errlen, "%s = %s: %s", key, path, err_str(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || size > TLS_FILE_MAX ||
	    fseek(f, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "%s = %s: not a regular file of at most %d bytes", key, path,
		    TLS_FILE_MAX);
		fclose(f);
		return NULL;
	}
	if ((b = BIO_new_fp(f, BIO_CLOSE)) == NULL) {
		snprintf(err, errlen, "%s = %s: out of memory", key, path);
		fclose(f);
	}
	return b;
}

/* "not valid after 2026-11-30 08:00 UTC" for ASN1 time t. */
static void
when(const ASN1_TIME *t, char *out, size_t outlen)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, outlen, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(out, outlen, "(an unreadable date)");
}

/*
 * The certificates in path: at least one. *first, when asked, is the first
 * (the leaf of a chain), for the caller to free. Returns 0, 1 when the first
 * is outside its validity period, or -1.
 */
static int
read_certs(const char *key, const char *path, X509 **first, char *err, size_t errlen)
{
	BIO *b = open_pem(key, path, err, errlen);
	X509 *x, *leaf = NULL;
	int n = 0, rc = 0;
	char date[64];

	if (b == NULL)
		return -1;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (n++ == 0)
			leaf = x;
		else
			X509_free(x);
	}
	ERR_clear_error(); /* the end of the file reads as an error */
	BIO_free(b);
	if (leaf == NULL) {
		snprintf(err, errlen, "%s = %s: no PEM certificate in it", key, path);
		return -1;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
		when(X509_get0_notAfter(leaf), date, sizeof(date));
		snprintf(err, errlen, "%s = %s: the certificate expired on %s", key, path, date);
		rc = 1;
	} else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
		when(X509_get0_notBefore(leaf), date, sizeof(date));
		snprintf(err, errlen, "%s = %s: the certificate is not valid before %s", key, path,
		    date);
		rc = 1;
	}
	if (first != NULL)
		*first = leaf;
	else
		X509_free(leaf);
	return rc;
}

/* A certificate and its key: both parse, and the key is the certificate's. */
static int
check_pair(
    const char *section, const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	char cert_key[64], key_key[64], expired[512] = "";
	X509 *cert = NULL;
	EVP_PKEY *pkey;
	BIO *b;
	int rc;

	snprintf(cert_key, sizeof(cert_key), "[%s] tls_cert", section);
	snprintf(key_key, sizeof(key_key), "[%s] tls_key", section);
	if ((rc = read_certs(cert_key, cert_path, &cert, err, errlen)) < 0)
		return -1;
	if (rc > 0)
		snprintf(expired, sizeof(expired), "%s", err);
	if ((b = open_pem(key_key, key_path, err, errlen)) == NULL) {
		X509_free(cert);
		return -1;
	}
	pkey = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	ERR_clear_error();
	BIO_free(b);
	if (pkey == NULL) {
		snprintf(err, errlen,
		    "%s = %s: no PEM private key in it (or it needs a passphrase)", key_key,
		    key_path);
		X509_free(cert);
		return -1;
	}
	if (X509_check_private_key(cert, pkey) != 1) {
		snprintf(err, errlen, "%s = %s is not the key of %s = %s", key_key, key_path,
		    cert_key, cert_path);
		rc = -1;
	}
	ERR_clear_error();
	EVP_PKEY_free(pkey);
	X509_free(cert);
	if (rc > 0)
		snprintf(err, errlen, "%s", expired);
	return rc;
}

int
tls_files_check(const struct config *cfg, char *err, size_t errlen)
{
	int rc, worst = 0;
	char first_warning[512] = "";

#define TAKE(call)                                                                                 \
	do {                                                                                       \
		if ((rc = (call)) < 0)                                                             \
			return -1;                                                                 \
		if (rc > 0 && worst == 0) {                                                        \
			worst = 1;                                                                 \
			snprintf(first_warning, sizeof(first_warning), "%s", err);                 \
		}                                                                                  \
	} while (0)

	if (cfg->remote_listen[0] != '\0') {
		TAKE(check_pair("api", cfg->tls_cert, cfg->tls_key, err, errlen));
		TAKE(read_certs("[api] tls_client_ca", cfg->tls_client_ca, NULL, err, errlen));
	}
	if (cfg->fleet_tls_ca[0] != '\0')
		TAKE(read_certs("[fleet] tls_ca", cfg->fleet_tls_ca, NULL, err, errlen));
	if (cfg->fleet_tls_cert[0] != '\0')
		TAKE(check_pair("fleet", cfg->fleet_tls_cert, cfg->fleet_tls_key, err, errlen));
	if (cfg->fleet_creds[0] != '\0') {
		BIO *b = open_pem("[fleet] creds", cfg->fleet_creds, err, errlen);

		if (b == NULL)
			return -1;
		BIO_free(b);
	}
#undef TAKE
	if (worst > 0)
		snprintf(err, errlen, "%s", first_warning);
	return worst;
}
