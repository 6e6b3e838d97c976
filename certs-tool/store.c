/* SPDX-License-Identifier: MIT */
/* Certificate and key files: written whole under a temporary name and renamed into place. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certs.h"
#include "tn/certutil.h"

#define DIR_MODE  0755
#define CERT_MODE 0644
#define KEY_MODE  0600

int
ct_path(char *buf, const char *dir, const char *name)
{
    int n = snprintf(buf, CT_PATH_MAX, "%s/%s", dir, name);

    if (n < 0 || n >= CT_PATH_MAX) {
        ct_err("%s: path too long", dir);
        return -1;
    }
    return 0;
}

/* Sets |*exists|; a missing file or directory is no error. */
static int
file_exists(const char *path, bool *exists)
{
    struct stat st;

    *exists = false;
    if (lstat(path, &st) == 0) {
        *exists = true;
        return 0;
    }
    if (errno == ENOENT)
        return 0;
    ct_err("%s: %s", path, strerror(errno));
    return -1;
}

int
ct_pair_state(const char *dir, enum ct_pair_state *out)
{
    char path[CT_PATH_MAX];
    bool has_cert, has_key;

    *out = CT_PAIR_NONE;
    if (ct_path(path, dir, "cert.pem") != 0 || file_exists(path, &has_cert) != 0 ||
        ct_path(path, dir, "key.pem") != 0 || file_exists(path, &has_key) != 0)
        return -1;
    if (has_cert && has_key)
        *out = CT_PAIR_BOTH;
    else if (has_cert)
        *out = CT_PAIR_CERT_ONLY;
    else if (has_key)
        *out = CT_PAIR_KEY_ONLY;
    return 0;
}

int
ct_mkdirs(const char *dir)
{
    char path[CT_PATH_MAX];
    struct stat st;
    size_t len = strlen(dir), i;

    if (len == 0 || len >= sizeof(path)) {
        ct_err("'%s': bad directory name", dir);
        return -1;
    }
    memcpy(path, dir, len + 1);
    /* Each prefix ending before a '/', then the whole path. */
    for (i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, DIR_MODE) != 0 && errno != EEXIST) {
            ct_err("%s: cannot create the directory: %s", path, strerror(errno));
            return -1;
        }
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            ct_err("%s: not a directory", path);
            return -1;
        }
        path[i] = dir[i];
    }
    return 0;
}

/* Writes |cert| or else |key| as PEM to a new file in |dir| whose name is left in |tmp|
 * (CT_PATH_MAX bytes; empty when there is no file to remove). */
static int
tmp_write(char *tmp, const char *dir, const char *name, X509 *cert, EVP_PKEY *key)
{
    BIO *bio = NULL;
    int fd = -1, r = -1;
    bool is_written;
    char leaf[64];

    snprintf(leaf, sizeof(leaf), ".%s.XXXXXX", name);
    if (ct_path(tmp, dir, leaf) != 0) {
        tmp[0] = '\0';
        goto out;
    }
    /* mkostemp creates the file with mode 0600 and O_EXCL: a key is never readable by
     * others, not even between open() and fchmod(). */
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        ct_err("%s: cannot create a file: %s", dir, strerror(errno));
        tmp[0] = '\0';
        goto out;
    }
    if (fchmod(fd, key != NULL ? KEY_MODE : CERT_MODE) != 0) {
        ct_err("%s: chmod: %s", tmp, strerror(errno));
        goto out;
    }
    if ((bio = BIO_new_fd(fd, BIO_NOCLOSE)) == NULL) {
        ct_err_ssl("%s: cannot write", tmp);
        goto out;
    }
    errno = 0;
    if (key != NULL)
        is_written = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1;
    else
        is_written = PEM_write_bio_X509(bio, cert) == 1;
    if (!is_written) {
        if (errno != 0)
            ct_err("%s: cannot write: %s", tmp, strerror(errno));
        else
            ct_err_ssl("%s: cannot write", tmp);
        goto out;
    }
    if (fsync(fd) != 0) {
        ct_err("%s: fsync: %s", tmp, strerror(errno));
        goto out;
    }
    r = close(fd);
    fd = -1;
    if (r != 0)
        ct_err("%s: close: %s", tmp, strerror(errno));
out:
    BIO_free(bio);
    if (fd >= 0)
        close(fd);
    if (r != 0 && tmp[0] != '\0') {
        unlink(tmp);
        tmp[0] = '\0';
    }
    return r;
}

/* Makes the renames durable; some file systems cannot sync a directory, which is no error. */
static void
sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int
ct_pair_write(const char *dir, X509 *cert, EVP_PKEY *key)
{
    char cert_tmp[CT_PATH_MAX] = "", key_tmp[CT_PATH_MAX] = "";
    char cert_path[CT_PATH_MAX], key_path[CT_PATH_MAX];
    int r = -1;

    if (ct_path(cert_path, dir, "cert.pem") != 0 || ct_path(key_path, dir, "key.pem") != 0)
        goto out;
    if (tmp_write(key_tmp, dir, "key.pem", NULL, key) != 0 ||
        tmp_write(cert_tmp, dir, "cert.pem", cert, NULL) != 0)
        goto out;
    if (rename(key_tmp, key_path) != 0) {
        ct_err("%s: %s", key_path, strerror(errno));
        goto out;
    }
    key_tmp[0] = '\0';
    if (rename(cert_tmp, cert_path) != 0) {
        ct_err("%s: %s", cert_path, strerror(errno));
        /* A key without its certificate would only be mistaken for a usable pair. */
        unlink(key_path);
        goto out;
    }
    cert_tmp[0] = '\0';
    sync_dir(dir);
    r = 0;
out:
    if (key_tmp[0] != '\0')
        unlink(key_tmp);
    if (cert_tmp[0] != '\0')
        unlink(cert_tmp);
    return r;
}

int
ct_cert_load(X509 **out, const char *path)
{
    FILE *f;

    *out = NULL;
    if ((f = fopen(path, "re")) == NULL) {
        ct_err("%s: %s", path, strerror(errno));
        return -1;
    }
    *out = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (*out == NULL) {
        ct_err_ssl("%s: not a PEM certificate", path);
        return -1;
    }
    return 0;
}

int
ct_key_load(EVP_PKEY **out, const char *path)
{
    bool is_encrypted = false;
    struct stat st;
    FILE *f;

    *out = NULL;
    if ((f = fopen(path, "re")) == NULL) {
        ct_err("%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0)
        ct_warn("%s is open to other users (mode %04o); chmod 600 it", path,
                (unsigned)(st.st_mode & 07777));
    *out = PEM_read_PrivateKey(f, NULL, tn_no_passphrase, &is_encrypted);
    fclose(f);
    if (*out == NULL && is_encrypted) {
        ERR_clear_error();
        ct_err("%s: the key is encrypted; certs-tool needs an unencrypted key", path);
        return -1;
    }
    if (*out == NULL) {
        ct_err_ssl("%s: not a PEM private key", path);
        return -1;
    }
    return 0;
}

bool
ct_same_dir(const char *a, const char *b)
{
    struct stat sa, sb;

    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}
