/*
 * Unit tests: the Windows local endpoint's certificates (agent/rpc/local_cert.c).
 * Plain OpenSSL, so they run here; the endpoint itself runs under wine
 * (tests/scenario/test_windows.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "local_cert.h"
#include "paths.h"

static const char *const files[] = {PATHS_LOCAL_CA, PATHS_LOCAL_SERVER, PATHS_LOCAL_SERVER_KEY,
    PATHS_LOCAL_ADMIN, PATHS_LOCAL_ADMIN_KEY};
#define N_FILES (sizeof(files) / sizeof(files[0]))

struct dir {
	char path[64];
};

static int
setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));

	snprintf(d->path, sizeof(d->path), "/tmp/ra-local-cert.XXXXXX");
	assert_non_null(mkdtemp(d->path));
	*state = d;
	return 0;
}

static void
remove_set(const char *dir)
{
	char p[128];

	for (size_t i = 0; i < N_FILES; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		(void)unlink(p);
	}
	assert_int_equal(rmdir(dir), 0); /* nothing else was written there */
}

static int
teardown(void **state)
{
	struct dir *d = *state;

	remove_set(d->path);
	free(d);
	return 0;
}

/* The whole file into buf (NUL-terminated); its length. */
static size_t
slurp(const char *dir, const char *name, char *buf, size_t len)
{
	char p[128];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "rb");
	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

static void
spit(const char *dir, const char *name, const char *text)
{
	char p[128];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "wb");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static X509 *
cert(const char *dir, const char *name)
{
	char buf[8192];
	size_t n = slurp(dir, name, buf, sizeof(buf));
	BIO *b = BIO_new_mem_buf(buf, (int)n);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	BIO_free(b);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *
key(const char *dir, const char *name)
{
	char buf[8192];
	size_t n = slurp(dir, name, buf, sizeof(buf));
	BIO *b = BIO_new_mem_buf(buf, (int)n);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);

	BIO_free(b);
	assert_non_null(k);
	return k;
}

/* Whether x chains to ca for purpose (X509_PURPOSE_SSL_SERVER / _CLIENT). */
static int
verifies(X509 *ca, X509 *x, int purpose)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	X509_STORE_add_cert(store, ca);
	X509_STORE_CTX_init(ctx, store, x, NULL);
	X509_STORE_CTX_set_purpose(ctx, purpose);
	ok = X509_verify_cert(ctx) == 1;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok;
}

static void
test_first_start_makes_a_set(void **state)
{
	struct dir *d = *state;
	char err[256] = "", group[32];
	int made = -1;
	X509 *ca, *srv, *adm;
	EVP_PKEY *sk, *ak;
	size_t glen;

	assert_int_equal(local_cert_ensure(d->path, &made, err, sizeof(err)), 0);
	assert_int_equal(made, 1);
	ca = cert(d->path, PATHS_LOCAL_CA);
	srv = cert(d->path, PATHS_LOCAL_SERVER);
	adm = cert(d->path, PATHS_LOCAL_ADMIN);
	sk = key(d->path, PATHS_LOCAL_SERVER_KEY);
	ak = key(d->path, PATHS_LOCAL_ADMIN_KEY);

	/* The CA is a CA; the server is one for 127.0.0.1 and localhost; the admin a client. */
	assert_int_equal(X509_check_ca(ca), 1);
	assert_true(verifies(ca, srv, X509_PURPOSE_SSL_SERVER));
	assert_false(verifies(ca, srv, X509_PURPOSE_SSL_CLIENT));
	assert_true(verifies(ca, adm, X509_PURPOSE_SSL_CLIENT));
	assert_false(verifies(ca, adm, X509_PURPOSE_SSL_SERVER));
	assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
	assert_int_not_equal(X509_check_ip_asc(srv, "10.0.0.1", 0), 1);
	assert_int_equal(X509_check_ca(adm), 0);

	/* Every key is P-256 and matches its certificate. */
	assert_int_equal(X509_check_private_key(srv, sk), 1);
	assert_int_equal(X509_check_private_key(adm, ak), 1);
	assert_int_equal(EVP_PKEY_get_group_name(ak, group, sizeof(group), &glen), 1);
	assert_string_equal(group, "prime256v1");
	assert_int_equal(EVP_PKEY_get_group_name(sk, group, sizeof(group), &glen), 1);
	assert_string_equal(group, "prime256v1");

	/* The CA's key was kept nowhere: neither written key is it. */
	assert_int_equal(X509_check_private_key(ca, sk), 0);
	assert_int_equal(X509_check_private_key(ca, ak), 0);

	X509_free(ca);
	X509_free(srv);
	X509_free(adm);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(ak);
}

static void
test_a_good_set_is_kept(void **state)
{
	struct dir *d = *state;
	char err[256], before[N_FILES][4096], after[4096];
	int made = -1;

	assert_int_equal(local_cert_ensure(d->path, &made, err, sizeof(err)), 0);
	for (size_t i = 0; i < N_FILES; i++)
		slurp(d->path, files[i], before[i], sizeof(before[i]));
	assert_int_equal(local_cert_ensure(d->path, &made, err, sizeof(err)), 0);
	assert_int_equal(made, 0);
	for (size_t i = 0; i < N_FILES; i++) {
		slurp(d->path, files[i], after, sizeof(after));
		assert_string_equal(before[i], after);
	}
}

/* Damage one file in some way: the whole set is made again, and it holds together. */
static void
renewed_after(struct dir *d, const char *name, const char *text)
{
	char err[256], ca_before[4096], ca_after[4096];
	int made = -1;
	X509 *ca, *srv, *adm;

	assert_int_equal(local_cert_ensure(d->path, &made, err, sizeof(err)), 0);
	slurp(d->path, PATHS_LOCAL_CA, ca_before, sizeof(ca_before));
	if (text == NULL) {
		char p[128];

		snprintf(p, sizeof(p), "%s/%s", d->path, name);
		assert_int_equal(unlink(p), 0);
	} else {
		spit(d->path, name, text);
	}
	assert_int_equal(local_cert_ensure(d->path, &made, err, sizeof(err)), 0);
	assert_int_equal(made, 1);
	slurp(d->path, PATHS_LOCAL_CA, ca_after, sizeof(ca_after));
	assert_string_not_equal(ca_before, ca_after); /* a new CA, not just the one file */
	ca = cert(d->path, PATHS_LOCAL_CA);
	srv = cert(d->path, PATHS_LOCAL_SERVER);
	adm = cert(d->path, PATHS_LOCAL_ADMIN);
	assert_true(verifies(ca, srv, X509_PURPOSE_SSL_SERVER));
	assert_true(verifies(ca, adm, X509_PURPOSE_SSL_CLIENT));
	X509_free(ca);
	X509_free(srv);
	X509_free(adm);
}

static void
test_a_missing_file_renews(void **state)
{
	for (size_t i = 0; i < N_FILES; i++)
		renewed_after(*state, files[i], NULL);
}

static void
test_a_damaged_file_renews(void **state)
{
	for (size_t i = 0; i < N_FILES; i++)
		renewed_after(*state, files[i], "-----BEGIN CERTIFICATE-----\nAAAA\n");
}

/* A certificate or key from another set (another CA) does not pass. */
static void
test_a_foreign_file_renews(void **state)
{
	struct dir *d = *state, other;
	char err[256], text[4096];
	int made;

	snprintf(other.path, sizeof(other.path), "/tmp/ra-local-cert.XXXXXX");
	assert_non_null(mkdtemp(other.path));
	assert_int_equal(local_cert_ensure(other.path, &made, err, sizeof(err)), 0);
	for (size_t i = 0; i < N_FILES; i++) {
		slurp(other.path, files[i], text, sizeof(text));
		renewed_after(d, files[i], text);
	}
	remove_set(other.path);
}

static void
test_digest(void **state)
{
	struct dir *d = *state;
	char err[256], pem[4096];
	unsigned char got[32], want[32];
	unsigned n = 0;
	int made;
	size_t len;
	X509 *adm;

	assert_int_equal(local_cert_ensure(d->path, &made, err, sizeof(err)), 0);
	len = slurp(d->path, PATHS_LOCAL_ADMIN, pem, sizeof(pem));
	adm = cert(d->path, PATHS_LOCAL_ADMIN);
	assert_int_equal(X509_digest(adm, EVP_sha256(), want, &n), 1);
	assert_int_equal(local_cert_digest(pem, len, got), 0);
	assert_memory_equal(got, want, 32);
	X509_free(adm);
	assert_int_equal(local_cert_digest("not a certificate", 17, got), -1);
	assert_int_equal(local_cert_digest(pem, 40, got), -1); /* cut short */
}

static void
test_an_unwritable_folder_says_which_file(void **state)
{
	char err[256] = "";
	int made = -1;

	(void)state;
	assert_int_equal(local_cert_ensure("/nonexistent/ra-dir", &made, err, sizeof(err)), -1);
	assert_int_equal(made, 0);
	assert_non_null(strstr(err, "cannot write /nonexistent/ra-dir/local-"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_first_start_makes_a_set, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_good_set_is_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_missing_file_renews, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_damaged_file_renews, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_foreign_file_renews, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
	    cmocka_unit_test(test_an_unwritable_folder_says_which_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
