// One home for OpenSSL object ownership (RAII) and the error queue.
#pragma once
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

namespace cg::security {

// std::unique_ptr<T, OsslDeleter<T_free>>: one owner of an OpenSSL object.
template <auto Free>
struct OsslDeleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
template <class T, auto Free>
using OsslPtr = std::unique_ptr<T, OsslDeleter<Free>>;

using BioPtr = OsslPtr<BIO, BIO_free_all>;
using BnPtr = OsslPtr<BIGNUM, BN_free>;
using PkeyPtr = OsslPtr<EVP_PKEY, EVP_PKEY_free>;
using MdPtr = OsslPtr<EVP_MD, EVP_MD_free>;
using MdCtxPtr = OsslPtr<EVP_MD_CTX, EVP_MD_CTX_free>;
using NamePtr = OsslPtr<X509_NAME, X509_NAME_free>;
using ExtPtr = OsslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using StorePtr = OsslPtr<X509_STORE, X509_STORE_free>;
using StoreCtxPtr = OsslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;
using ReqPtr = OsslPtr<X509_REQ, X509_REQ_free>;
using X509Ptr = OsslPtr<X509, X509_free>;

// A stack of certificates owned as a stack only (its certificates are not freed).
struct X509StackFree {
  void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_free(s); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackFree>;

// OPENSSL_free for what OpenSSL allocated for us (BN_bn2hex, …).
struct OsslFree {
  void operator()(void* p) const noexcept { OPENSSL_free(p); }
};

// Drains OpenSSL's error queue of this thread: "error; error; …", or
// `when_empty` when there was nothing in it.
inline std::string drain_openssl_errors(std::string_view when_empty = {}) {
  std::string out;
  char buf[256];
  while (const unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string(when_empty) : out;
}

// "step: <errors>" (just "step" when the queue was empty), draining the queue.
inline std::string openssl_error(std::string_view step) {
  std::string e = drain_openssl_errors();
  return e.empty() ? std::string(step) : std::string(step) + ": " + e;
}

}  // namespace cg::security
