/*
 * local_cert.c: the local endpoint's CA, server and admin certificates
 * (local_cert.h), with OpenSSL 3's libcrypto.
 */
#include "local_cert.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "paths.h"

#define LOCAL_CERT_FILE_MAX 16384 /* a P-256 certificate is under 1 KiB */

enum cert_kind { CERT_CA, CERT_SERVER, CERT_ADMIN };

struct set {
	X509 *ca, *server, *admin;
	EVP_PKEY *server_key, *admin_key;
};

static void
set_free(struct set *s)
{
	X509_free(s->ca);
	X509_free(s->server);
	X509_free(s->admin);
	EVP_PKEY_free(s->server_key);
	EVP_PKEY_free(s->admin_key);
	memset(s, 0, sizeof(*s));
}

/* OpenSSL's last error as text (its queue cleared), or what. */
static const char *
ossl_reason(char *buf, size_t len, const char *what)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "%s", what);
	else
		snprintf(buf, len, "%s: %s", what, ERR_reason_error_string(e));
	ERR_clear_error();
	return buf;
}

static X509 *
read_cert(const char *dir, const char *name)
{
	char path[1024];
	BIO *b;
	X509 *x;

	paths_join(path, sizeof(path), dir, name);
	if ((b = BIO_new_file(path, "rb")) == NULL)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return x;
}

static EVP_PKEY *
read_key(const char *dir, const char *name)
{
	char path[1024];
	BIO *b;
	EVP_PKEY *k;

	paths_join(path, sizeof(path), dir, name);
	if ((b = BIO_new_file(path, "rb")) == NULL)
		return NULL;
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	return k;
}

/* Whether x is signed by ca, valid now and for LOCAL_CERT_RENEW more days. */
static int
cert_good(X509 *ca, X509 *x, int purpose)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok = 0, days = 0, secs = 0;

	if (store != NULL && ctx != NULL && X509_STORE_add_cert(store, ca) == 1 &&
	    X509_STORE_CTX_init(ctx, store, x, NULL) == 1) {
		X509_STORE_CTX_set_purpose(ctx, purpose);
		ok = X509_verify_cert(ctx) == 1 &&
		     ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) == 1 &&
		     days >= LOCAL_CERT_RENEW;
	}
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return ok;
}

/* The set in dir, if every file is there and it all holds together. */
static int
load_set(const char *dir, struct set *s)
{
	memset(s, 0, sizeof(*s));
	s->ca = read_cert(dir, PATHS_LOCAL_CA);
	s->server = read_cert(dir, PATHS_LOCAL_SERVER);
	s->admin = read_cert(dir, PATHS_LOCAL_ADMIN);
	s->server_key = read_key(dir, PATHS_LOCAL_SERVER_KEY);
	s->admin_key = read_key(dir, PATHS_LOCAL_ADMIN_KEY);
	if (s->ca != NULL && s->server != NULL && s->admin != NULL && s->server_key != NULL &&
	    s->admin_key != NULL && X509_check_private_key(s->server, s->server_key) == 1 &&
	    X509_check_private_key(s->admin, s->admin_key) == 1 &&
	    cert_good(s->ca, s->server, X509_PURPOSE_SSL_SERVER) &&
	    cert_good(s->ca, s->admin, X509_PURPOSE_SSL_CLIENT))
		return 0;
	ERR_clear_error();
	set_free(s);
	return -1;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	int ok = e != NULL && X509_add_ext(x, e, -1) == 1;

	X509_EXTENSION_free(e);
	return ok;
}

/*
 * A certificate of kind for key, named cn, signed by issuer (NULL: itself)
 * with issuer_key. NULL on failure (OpenSSL's error queue says why).
 */
static X509 *
make_cert(enum cert_kind kind, EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	BIGNUM *serial = BN_new();
	X509V3_CTX v3;
	int ok;

	/* A random positive 127-bit serial: unique without any state kept. */
	ok = x != NULL && name != NULL && serial != NULL && X509_set_version(x, X509_VERSION_3) &&
	     BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
	     BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) != NULL &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL && /* clocks differ a little */
	     X509_time_adj_ex(X509_getm_notAfter(x), LOCAL_CERT_DAYS, 0, NULL) != NULL &&
	     X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
		 (const unsigned char *)"redirect-agent local endpoint", -1, -1, 0) &&
	     X509_NAME_add_entry_by_txt(
		 name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
	     X509_set_subject_name(x, name) &&
	     X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) &&
	     X509_set_pubkey(x, key);
	if (ok) {
		X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
		ok = add_ext(x, &v3, NID_subject_key_identifier, "hash");
		switch (kind) {
		case CERT_CA:
			ok = ok &&
			     add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
			     add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
			break;
		case CERT_SERVER:
			ok = ok && add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") &&
			     add_ext(x, &v3, NID_key_usage, "critical,digitalSignature") &&
			     add_ext(x, &v3, NID_ext_key_usage, "serverAuth") &&
			     add_ext(x, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") &&
			     add_ext(x, &v3, NID_authority_key_identifier, "keyid");
			break;
		case CERT_ADMIN:
			ok = ok && add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") &&
			     add_ext(x, &v3, NID_key_usage, "critical,digitalSignature") &&
			     add_ext(x, &v3, NID_ext_key_usage, "clientAuth") &&
			     add_ext(
				 x, &v3, NID_subject_alt_name, "DNS:redirect-agent-local-admin") &&
			     add_ext(x, &v3, NID_authority_key_identifier, "keyid");
			break;
		}
		ok = ok && X509_sign(x, issuer_key, EVP_sha256()) > 0;
	}
	BN_free(serial);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Write the PEM of a certificate (x) or of a private key (k) to dir/name. */
static int
write_pem(const char *dir, const char *name, X509 *x, EVP_PKEY *k, char *err, size_t errlen)
{
	char path[1024];
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	FILE *f = NULL;
	int ok;

	paths_join(path, sizeof(path), dir, name);
	ok = b != NULL && (x != NULL ? PEM_write_bio_X509(b, x)
				     : PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL));
	if (!ok || (n = BIO_get_mem_data(b, &data)) <= 0) {
		ossl_reason(err, errlen, name);
		BIO_free(b);
		return -1;
	}
	ok = (f = fopen(path, "wb")) != NULL && fwrite(data, 1, (size_t)n, f) == (size_t)n;
	if (f != NULL && fclose(f) != 0)
		ok = 0;
	if (k != NULL)
		OPENSSL_cleanse(data, (size_t)n); /* the key's text, in the BIO's memory */
	BIO_free(b);
	if (!ok) {
		snprintf(err, errlen, "cannot write %s", path);
		return -1;
	}
	return 0;
}

/* A new set in dir; the CA's key is freed (never written) at the end. */
static int
make_set(const char *dir, char *err, size_t errlen)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256");
	struct set s = {0};
	int rc = -1;

	s.server_key = EVP_EC_gen("P-256");
	s.admin_key = EVP_EC_gen("P-256");
	if (ca_key == NULL || s.server_key == NULL || s.admin_key == NULL) {
		ossl_reason(err, errlen, "cannot make a P-256 key");
		goto out;
	}
	if ((s.ca = make_cert(CERT_CA, ca_key, "redirect-agent local CA", NULL, ca_key)) == NULL ||
	    (s.server = make_cert(CERT_SERVER, s.server_key, "localhost", s.ca, ca_key)) == NULL ||
	    (s.admin = make_cert(
		 CERT_ADMIN, s.admin_key, "redirect-agent-local-admin", s.ca, ca_key)) == NULL) {
		ossl_reason(err, errlen, "cannot make a certificate");
		goto out;
	}
	/* Keys first: a crash between the files leaves a set load_set refuses. */
	if (write_pem(dir, PATHS_LOCAL_SERVER_KEY, NULL, s.server_key, err, errlen) != 0 ||
	    write_pem(dir, PATHS_LOCAL_ADMIN_KEY, NULL, s.admin_key, err, errlen) != 0 ||
	    write_pem(dir, PATHS_LOCAL_SERVER, s.server, NULL, err, errlen) != 0 ||
	    write_pem(dir, PATHS_LOCAL_ADMIN, s.admin, NULL, err, errlen) != 0 ||
	    write_pem(dir, PATHS_LOCAL_CA, s.ca, NULL, err, errlen) != 0)
		goto out;
	rc = 0;
out:
	EVP_PKEY_free(ca_key);
	set_free(&s);
	return rc;
}

int
local_cert_ensure(const char *dir, int *made, char *err, size_t errlen)
{
	struct set s;

	*made = 0;
	if (load_set(dir, &s) == 0) {
		set_free(&s);
		return 0;
	}
	if (make_set(dir, err, errlen) != 0)
		return -1;
	/* Read back what was written: the endpoint serves only a set that loads. */
	if (load_set(dir, &s) != 0) {
		snprintf(err, errlen, "the new certificates in %s do not read back", dir);
		return -1;
	}
	set_free(&s);
	*made = 1;
	return 0;
}

int
local_cert_digest(const char *pem, size_t len, unsigned char out[32])
{
	BIO *b = len <= LOCAL_CERT_FILE_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	unsigned n = 0;
	int ok = x != NULL && X509_digest(x, EVP_sha256(), out, &n) == 1 && n == 32;

	X509_free(x);
	BIO_free(b);
	ERR_clear_error();
	return ok ? 0 : -1;
}
