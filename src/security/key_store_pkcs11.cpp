// PKCS#11 backend of the key store (SoftHSM2 in the tests).
//
// Two layers over one loaded module:
//  - the PKCS#11 C API (p11-kit's pkcs11.h, function list of the module) for
//    everything whose attributes we must control: C_GenerateKeyPair with
//    CKA_SENSITIVE / !CKA_EXTRACTABLE, find / relabel / destroy, the AES-256
//    sealing key and CKM_AES_GCM;
//  - libp11 (Debian libp11-3) to turn a token private key into an EVP_PKEY whose
//    RSA_METHOD / EC_KEY_METHOD signs with C_Sign on the token. OpenSSL 3 runs
//    such "foreign" keys through its legacy code path, which TLS 1.2 and 1.3
//    (ECDSA, RSA-PSS via CKM_RSA_X_509 raw signatures) and X509_REQ_sign use.
//
// libp11 calls C_Initialize / C_Finalize; one Module per module path and
// process is shared by every store and by every EVP_PKEY handed out (the
// EVP_PKEY carries a reference in its ex_data), so the module stays loaded
// while an SSL_CTX still holds one of its keys.
//
// libp11 0.4 only offers legacy keys: this file uses the OpenSSL 3.0-deprecated
// EVP_PKEY_get1_RSA / EVP_PKEY_get1_EC_KEY, hence OPENSSL_SUPPRESS_DEPRECATED.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <dlfcn.h>
#include <fcntl.h>
#include <libp11.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <p11-kit/pkcs11.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "security/key_store.hpp"
#include "security/key_store_internal.hpp"

namespace cg::security {
namespace {

using detail::require_label;

constexpr const char* kSealKeyLabel = "chargeguard-seal-v1";
constexpr std::size_t kIdSize = 16;
// DER of the named-curve OIDs (CKA_EC_PARAMS).
constexpr std::uint8_t kOidP256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::uint8_t kOidP384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

std::string rv_text(CK_RV rv) {
  struct Name {
    CK_RV rv;
    const char* name;
  };
  static constexpr Name kNames[] = {
      {CKR_OK, "CKR_OK"},
      {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
      {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
      {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
      {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
      {CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY"},
      {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
      {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
      {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
      {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
      {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
      {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
      {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
      {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
      {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
      {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
      {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
      {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
      {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
      {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
      {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
      {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
      {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
      {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
      {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
      {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
      {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
      {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
      {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
      {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
      {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
      {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
      {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
      {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
      {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
      {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
      {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
  };
  for (const auto& n : kNames)
    if (n.rv == rv) return n.name;
  char buf[32];
  std::snprintf(buf, sizeof buf, "CKR 0x%lx", static_cast<unsigned long>(rv));
  return buf;
}

// ---- one loaded module per path and process ----------------------------------

struct Module {
  std::string path;
  PKCS11_CTX* ctx = nullptr;
  PKCS11_SLOT* slots = nullptr;
  unsigned nslots = 0;
  void* dl = nullptr;
  CK_FUNCTION_LIST* f = nullptr;
  std::mutex mu;  // libp11 calls (its key lists are not thread-safe)

  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  ~Module() {
    if (slots) PKCS11_release_all_slots(ctx, slots, nslots);
    if (ctx) {
      PKCS11_CTX_unload(ctx);  // C_Finalize
      PKCS11_CTX_free(ctx);
    }
    if (dl) ::dlclose(dl);
    ERR_clear_error();
  }
};

std::mutex& registry_mutex() {
  static auto* m = new std::mutex();  // never destroyed: keys may be freed late at exit
  return *m;
}
std::map<std::string, std::weak_ptr<Module>>& registry() {
  static auto* r = new std::map<std::string, std::weak_ptr<Module>>();  // never destroyed: used at exit
  return *r;
}

std::shared_ptr<Module> acquire_module(const std::string& configured_path) {
  std::error_code ec;
  const std::string path =
      configured_path.empty() ? std::string() : std::filesystem::canonical(configured_path, ec).string();
  struct stat st {};
  if (path.empty() || ec || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    throw KeyStoreError(KeyStoreErrc::ModuleNotFound, "PKCS#11 module " + configured_path + " not found");
  std::lock_guard lk(registry_mutex());
  if (auto m = registry()[path].lock()) return m;
  auto m = std::make_unique<Module>();  // plain delete on failure: the registry lock is held here
  m->path = path;
  m->ctx = PKCS11_CTX_new();
  if (!m->ctx || PKCS11_CTX_load(m->ctx, path.c_str()) != 0) {
    const std::string why = detail::openssl_errors();
    if (m->ctx) PKCS11_CTX_free(m->ctx);
    m->ctx = nullptr;
    throw KeyStoreError(KeyStoreErrc::ModuleNotFound, "cannot load or initialize PKCS#11 module " + configured_path +
                                                          (why.empty() ? "" : " (" + why + ")"));
  }
  if (PKCS11_enumerate_slots(m->ctx, &m->slots, &m->nslots) != 0) {
    m->slots = nullptr;
    throw KeyStoreError(KeyStoreErrc::Backend,
                        "PKCS#11 module " + configured_path + ": cannot list slots (" + detail::openssl_errors() + ")");
  }
  // Same file, so the same handle libp11 opened; C_Initialize was done by libp11.
  m->dl = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  auto get_list = m->dl ? reinterpret_cast<CK_C_GetFunctionList>(::dlsym(m->dl, "C_GetFunctionList")) : nullptr;
  if (!get_list || get_list(&m->f) != CKR_OK || !m->f)
    throw KeyStoreError(KeyStoreErrc::ModuleNotFound,
                        "PKCS#11 module " + configured_path + " has no usable C_GetFunctionList");
  // From here on the last reference finalizes under the registry lock, so a
  // module is finalized before the same path can be loaded again.
  std::shared_ptr<Module> shared(m.release(), [](Module* p) {
    std::lock_guard lk2(registry_mutex());
    delete p;
  });
  registry()[path] = shared;
  return shared;
}

// EVP_PKEY ex_data holding a std::shared_ptr<Module>* (keeps the module loaded).
void keepalive_free(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::shared_ptr<Module>*>(ptr);
}
int keepalive_dup(CRYPTO_EX_DATA*, const CRYPTO_EX_DATA*, void** from_d, int, long, void*) {
  if (*from_d) *from_d = new std::shared_ptr<Module>(*static_cast<std::shared_ptr<Module>*>(*from_d));
  return 1;
}
int keepalive_index() {
  static const int idx = EVP_PKEY_get_ex_new_index(0, nullptr, nullptr, keepalive_dup, keepalive_free);
  return idx;
}

// ---- PIN file ----------------------------------------------------------------

SecretBytes read_pin_file(const std::filesystem::path& file) {
  if (file.empty()) throw KeyStoreError(KeyStoreErrc::PinFile, "PKCS#11 key store: no PIN file configured");
  const int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    throw KeyStoreError(KeyStoreErrc::PinFile,
                        "cannot open PIN file " + file.string() + " (" + std::strerror(errno) + ")");
  struct stat st {};
  std::string problem;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    problem = "is not a regular file";
  } else if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    problem = std::string("must have mode 0600 (has ") + mode + ")";
  } else if (st.st_size > static_cast<off_t>(kMaxPinFileSize)) {
    problem = "is too large for a PIN file";
  }
  SecretBytes buf(kMaxPinFileSize);
  std::size_t got = 0;
  while (problem.empty() && got < buf.size()) {
    const ssize_t r = ::read(fd, buf.data() + got, buf.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) problem = "cannot be read";
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  if (!problem.empty()) throw KeyStoreError(KeyStoreErrc::PinFile, "PIN file " + file.string() + " " + problem);
  std::size_t len = 0;
  while (len < got && buf.data()[len] != '\n' && buf.data()[len] != '\r') ++len;
  buf.resize_down(len);
  if (len == 0) throw KeyStoreError(KeyStoreErrc::PinFile, "PIN file " + file.string() + " is empty");
  return buf;
}

// ---- the store -----------------------------------------------------------------

class Pkcs11KeyStore final : public KeyStore {
 public:
  explicit Pkcs11KeyStore(const Pkcs11KeyStoreOptions& opt) : token_label_(opt.token_label) {
    if (token_label_.empty() || token_label_.size() > 32)
      throw KeyStoreError(KeyStoreErrc::InvalidArgument, "PKCS#11 token label must be 1 to 32 characters");
    SecretBytes pin = read_pin_file(opt.pin_file);
    mod_ = acquire_module(opt.module_path);
    f_ = mod_->f;

    std::string present;
    int matches = 0;
    for (unsigned i = 0; i < mod_->nslots; ++i) {
      PKCS11_TOKEN* t = mod_->slots[i].token;
      if (!t || !t->initialized || !t->label) continue;
      if (!present.empty()) present += ", ";
      present += "'" + detail::printable(t->label) + "'";
      if (token_label_ == t->label) {
        slot_ = &mod_->slots[i];
        ++matches;
      }
    }
    if (matches != 1)
      throw KeyStoreError(KeyStoreErrc::TokenNotFound,
                          std::string(matches ? "more than one" : "no") + " PKCS#11 token labelled '" +
                              detail::printable(token_label_) + "' in module " + opt.module_path +
                              " (tokens: " + (present.empty() ? "none" : present) + ")");
    slot_id_ = PKCS11_get_slotid_from_slot(slot_);

    CK_RV rv = f_->C_OpenSession(slot_id_, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &session_);
    if (rv != CKR_OK)
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "cannot open a session with token '" + token_label_ + "': " + rv_text(rv));
    // Login state is per process: CKR_USER_ALREADY_LOGGED_IN means another
    // store of this process logged in to the token already.
    rv = f_->C_Login(session_, CKU_USER, pin.data(), pin.size());
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
      f_->C_CloseSession(session_);
      if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE)
        throw KeyStoreError(KeyStoreErrc::WrongPin, "wrong PIN for PKCS#11 token '" + token_label_ + "' (PIN file " +
                                                        opt.pin_file.string() + ")");
      if (rv == CKR_PIN_LOCKED)
        throw KeyStoreError(KeyStoreErrc::PinLocked, "the user PIN of PKCS#11 token '" + token_label_ + "' is locked");
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "login to PKCS#11 token '" + token_label_ + "' failed: " + rv_text(rv));
    }
    // libp11 keeps its own login flag (for re-login after fork); the token is
    // logged in already, so this does not present the PIN a second time.
    std::string pin_c(pin.view());
    int r;
    {
      std::lock_guard ml(mod_->mu);
      r = PKCS11_login(slot_, 0, pin_c.c_str());
    }
    OPENSSL_cleanse(pin_c.data(), pin_c.size());
    if (r != 0) {
      f_->C_CloseSession(session_);
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "libp11 login to token '" + token_label_ + "' failed: " + detail::openssl_errors());
    }
  }

  ~Pkcs11KeyStore() override { f_->C_CloseSession(session_); }

  std::string_view backend() const noexcept override { return "pkcs11"; }

  KeyInfo generate_key(std::string_view label, KeyType type) override {
    require_label(label);
    std::lock_guard lk(mu_);
    if (!find(CKO_PRIVATE_KEY, label).empty() || !find(CKO_PUBLIC_KEY, label).empty())
      throw KeyStoreError(KeyStoreErrc::KeyExists,
                          "key '" + std::string(label) + "' exists already in token '" + token_label_ + "'");
    std::uint8_t id[kIdSize];
    if (RAND_bytes(id, sizeof id) != 1) throw KeyStoreError(KeyStoreErrc::Backend, "CSPRNG failure");
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = 3072;
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    void* lbl = const_cast<char*>(label.data());
    std::vector<CK_ATTRIBUTE> pub = {
        {CKA_TOKEN, &yes, sizeof yes}, {CKA_PRIVATE, &no, sizeof no}, {CKA_VERIFY, &yes, sizeof yes},
        {CKA_ENCRYPT, &no, sizeof no}, {CKA_WRAP, &no, sizeof no},    {CKA_LABEL, lbl, label.size()},
        {CKA_ID, id, sizeof id},
    };
    std::vector<CK_ATTRIBUTE> prv = {
        {CKA_TOKEN, &yes, sizeof yes},     {CKA_PRIVATE, &yes, sizeof yes}, {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no}, {CKA_SIGN, &yes, sizeof yes},    {CKA_DECRYPT, &no, sizeof no},
        {CKA_UNWRAP, &no, sizeof no},      {CKA_DERIVE, &no, sizeof no},    {CKA_LABEL, lbl, label.size()},
        {CKA_ID, id, sizeof id},
    };
    CK_MECHANISM mech{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    switch (type) {
      case KeyType::EcP256:
        pub.push_back({CKA_EC_PARAMS, const_cast<std::uint8_t*>(kOidP256), sizeof kOidP256});
        break;
      case KeyType::EcP384:
        pub.push_back({CKA_EC_PARAMS, const_cast<std::uint8_t*>(kOidP384), sizeof kOidP384});
        break;
      case KeyType::Rsa3072:
        mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        pub.push_back({CKA_MODULUS_BITS, &bits, sizeof bits});
        pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof exponent});
        break;
    }
    CK_OBJECT_HANDLE hpub = 0, hprv = 0;
    const CK_RV rv =
        f_->C_GenerateKeyPair(session_, &mech, pub.data(), pub.size(), prv.data(), prv.size(), &hpub, &hprv);
    if (rv != CKR_OK)
      throw KeyStoreError(KeyStoreErrc::Backend, "generating a " + std::string(to_string(type)) + " key '" +
                                                     std::string(label) + "' in token '" + token_label_ +
                                                     "' failed: " + rv_text(rv));
    return info(hprv, label);
  }

  std::optional<KeyInfo> find_key(std::string_view label) override {
    require_label(label);
    std::lock_guard lk(mu_);
    const auto h = find(CKO_PRIVATE_KEY, label);
    if (h.empty()) return std::nullopt;
    if (h.size() > 1) throw ambiguous(label);
    return info(h[0], label);
  }

  std::vector<std::string> list_keys() override {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    for (CK_OBJECT_HANDLE h : find(CKO_PRIVATE_KEY, std::nullopt)) {
      const auto v = attr_bytes(h, CKA_LABEL);
      const std::string_view s(reinterpret_cast<const char*>(v.data()), v.size());
      if (is_valid_key_label(s)) out.emplace_back(s);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  bool delete_key(std::string_view label) override {
    require_label(label);
    std::lock_guard lk(mu_);
    const auto prv = find(CKO_PRIVATE_KEY, label);
    auto all = find(CKO_PUBLIC_KEY, label);
    all.insert(all.end(), prv.begin(), prv.end());
    for (CK_OBJECT_HANDLE h : all) {
      const CK_RV rv = f_->C_DestroyObject(session_, h);
      if (rv != CKR_OK)
        throw KeyStoreError(KeyStoreErrc::Backend, "deleting key '" + std::string(label) + "' failed: " + rv_text(rv));
    }
    return !prv.empty();
  }

  void rename_key(std::string_view from, std::string_view to) override {
    require_label(from);
    require_label(to);
    std::lock_guard lk(mu_);
    const auto prv = find(CKO_PRIVATE_KEY, from);
    if (prv.empty())
      throw KeyStoreError(KeyStoreErrc::KeyNotFound,
                          "no key '" + std::string(from) + "' in token '" + token_label_ + "'");
    if (!find(CKO_PRIVATE_KEY, to).empty() || !find(CKO_PUBLIC_KEY, to).empty())
      throw KeyStoreError(KeyStoreErrc::KeyExists,
                          "key '" + std::string(to) + "' exists already in token '" + token_label_ + "'");
    auto objs = find(CKO_PUBLIC_KEY, from);
    objs.insert(objs.end(), prv.begin(), prv.end());
    CK_ATTRIBUTE a{CKA_LABEL, const_cast<char*>(to.data()), to.size()};
    for (CK_OBJECT_HANDLE h : objs) {
      const CK_RV rv = f_->C_SetAttributeValue(session_, h, &a, 1);
      if (rv != CKR_OK)
        throw KeyStoreError(KeyStoreErrc::Backend,
                            "relabelling key '" + std::string(from) + "' failed: " + rv_text(rv));
    }
  }

  PrivateKey private_key(std::string_view label) override {
    require_label(label);
    std::lock_guard lk(mu_);
    const auto h = find(CKO_PRIVATE_KEY, label);
    if (h.empty())
      throw KeyStoreError(KeyStoreErrc::KeyNotFound,
                          "no key '" + std::string(label) + "' in token '" + token_label_ + "'");
    if (h.size() > 1) throw ambiguous(label);
    const auto id = attr_bytes(h[0], CKA_ID);
    if (id.empty()) throw KeyStoreError(KeyStoreErrc::Backend, "key '" + std::string(label) + "' has no CKA_ID");

    std::lock_guard ml(mod_->mu);
    PKCS11_KEY* keys = nullptr;
    unsigned n = 0;
    if (PKCS11_enumerate_keys(slot_->token, &keys, &n) != 0)
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "libp11 cannot list the keys of token '" + token_label_ + "': " + detail::openssl_errors());
    // libp11 caches keys by object handle; the random CKA_ID tells the live
    // key from a deleted one with the same label.
    EVP_PKEY* p11 = nullptr;
    for (unsigned i = 0; i < n && !p11; ++i)
      if (keys[i].id_len == id.size() && std::memcmp(keys[i].id, id.data(), id.size()) == 0)
        p11 = PKCS11_get_private_key(&keys[i]);
    if (!p11)
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "libp11 cannot use key '" + std::string(label) + "': " + detail::openssl_errors());
    // A new EVP_PKEY sharing libp11's RSA / EC_KEY (which sign on the token):
    // libp11 keeps its own EVP_PKEY cached until the module is unloaded, ours
    // carries the reference that keeps the module loaded.
    PrivateKey out(EVP_PKEY_new());
    bool ok = false;
    if (out && EVP_PKEY_get_base_id(p11) == EVP_PKEY_EC) {
      EC_KEY* ec = EVP_PKEY_get1_EC_KEY(p11);
      ok = ec && EVP_PKEY_assign_EC_KEY(out.get(), ec) == 1;
      if (!ok) EC_KEY_free(ec);
    } else if (out && EVP_PKEY_get_base_id(p11) == EVP_PKEY_RSA) {
      RSA* rsa = EVP_PKEY_get1_RSA(p11);
      ok = rsa && EVP_PKEY_assign_RSA(out.get(), rsa) == 1;
      if (!ok) RSA_free(rsa);
    }
    EVP_PKEY_free(p11);
    if (ok) {
      auto* ref = new std::shared_ptr<Module>(mod_);
      if (EVP_PKEY_set_ex_data(out.get(), keepalive_index(), ref) != 1) {
        delete ref;
        ok = false;
      }
    }
    if (!ok) {
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "cannot wrap key '" + std::string(label) + "' for OpenSSL: " + detail::openssl_errors());
    }
    return out;
  }

  std::optional<std::uint64_t> read_counter(std::string_view label) override {
    require_label(label);
    std::lock_guard lk(mu_);
    return counter_value(label).first;
  }

  std::uint64_t raise_counter(std::string_view label, std::uint64_t value) override {
    require_label(label);
    std::lock_guard lk(mu_);
    const auto [now, handle] = counter_value(label);
    if (now && *now >= value) return *now;
    std::uint8_t be[8];
    for (int i = 0; i < 8; ++i) be[i] = static_cast<std::uint8_t>(value >> (56 - 8 * i));
    // A new object first, then the old one goes: a power loss in between
    // leaves both, and the higher one counts (SoftHSM2 keeps CKA_VALUE of
    // data objects read-only, so there is no update in place).
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    const std::string name = counter_label(label);
    static const char kApp[] = "chargeguard";
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_LABEL, const_cast<char*>(name.data()), name.size()},
        {CKA_APPLICATION, const_cast<char*>(kApp), sizeof kApp - 1},
        {CKA_VALUE, be, sizeof be},
    };
    CK_OBJECT_HANDLE h = 0;
    const CK_RV rv = f_->C_CreateObject(session_, t, sizeof t / sizeof t[0], &h);
    if (rv != CKR_OK) {
      throw KeyStoreError(KeyStoreErrc::Backend, "cannot store counter '" + std::string(label) + "' in token '" +
                                                     token_label_ + "': " + rv_text(rv));
    }
    if (handle) f_->C_DestroyObject(session_, *handle);  // best effort: the higher value wins anyway
    return value;
  }

 protected:
  std::uint8_t sealer_id() const noexcept override { return 2; }

  std::vector<std::uint8_t> aead_seal(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                                      std::span<const std::uint8_t> pt) override {
    std::lock_guard lk(mu_);
    const CK_OBJECT_HANDLE key = seal_key(true);
    CK_GCM_PARAMS gp = gcm_params(nonce, aad);
    CK_MECHANISM mech{CKM_AES_GCM, &gp, sizeof gp};
    std::vector<std::uint8_t> out(pt.size() + 16);
    CK_ULONG len = out.size();
    CK_RV rv = f_->C_EncryptInit(session_, &mech, key);
    if (rv == CKR_OK) rv = f_->C_Encrypt(session_, const_cast<std::uint8_t*>(pt.data()), pt.size(), out.data(), &len);
    if (rv != CKR_OK)
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "seal: AES-GCM on token '" + token_label_ + "' failed: " + rv_text(rv));
    out.resize(len);
    return out;
  }

  SecretBytes aead_open(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                        std::span<const std::uint8_t> ct) override {
    std::lock_guard lk(mu_);
    const CK_OBJECT_HANDLE key = seal_key(false);
    CK_GCM_PARAMS gp = gcm_params(nonce, aad);
    CK_MECHANISM mech{CKM_AES_GCM, &gp, sizeof gp};
    SecretBytes out(ct.size());
    CK_ULONG len = out.size();
    CK_RV rv = f_->C_DecryptInit(session_, &mech, key);
    if (rv == CKR_OK) rv = f_->C_Decrypt(session_, const_cast<std::uint8_t*>(ct.data()), ct.size(), out.data(), &len);
    if (rv != CKR_OK || len > ct.size() - 16)
      throw KeyStoreError(KeyStoreErrc::UnsealFailed,
                          "unseal failed: the blob is damaged or tampered with, or was sealed for another purpose or "
                          "by another key store (" +
                              rv_text(rv) + ")");
    out.resize_down(len);
    return out;
  }

 private:
  static std::string counter_label(std::string_view label) { return "cg-counter." + std::string(label); }

  // The counter's value and object (the highest, should there be several).
  std::pair<std::optional<std::uint64_t>, std::optional<CK_OBJECT_HANDLE>> counter_value(std::string_view label) {
    const std::string name = counter_label(label);
    std::pair<std::optional<std::uint64_t>, std::optional<CK_OBJECT_HANDLE>> best;
    for (const CK_OBJECT_HANDLE h : find(CKO_DATA, name)) {
      const auto v = attr_bytes(h, CKA_VALUE);
      if (v.size() != 8) continue;
      std::uint64_t x = 0;
      for (const std::uint8_t b : v) x = x << 8 | b;
      if (!best.first || x > *best.first) best = {x, h};
    }
    return best;
  }

  KeyStoreError ambiguous(std::string_view label) const {
    return KeyStoreError(KeyStoreErrc::Backend,
                         "more than one key labelled '" + std::string(label) + "' in token '" + token_label_ + "'");
  }

  static CK_GCM_PARAMS gcm_params(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad) {
    CK_GCM_PARAMS gp{};
    gp.pIv = const_cast<std::uint8_t*>(nonce.data());
    gp.ulIvLen = nonce.size();
    gp.ulIvBits = nonce.size() * 8;
    gp.pAAD = const_cast<std::uint8_t*>(aad.data());
    gp.ulAADLen = aad.size();
    gp.ulTagBits = 128;
    return gp;
  }

  // Objects of a class, with a label (or all of them); at most 1024.
  std::vector<CK_OBJECT_HANDLE> find(CK_OBJECT_CLASS cls, std::optional<std::string_view> label) {
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, nullptr, 0}};
    if (label) t[1] = {CKA_LABEL, const_cast<char*>(label->data()), label->size()};
    CK_RV rv = f_->C_FindObjectsInit(session_, t, label ? 2 : 1);
    std::vector<CK_OBJECT_HANDLE> out;
    while (rv == CKR_OK) {
      CK_OBJECT_HANDLE buf[64];
      CK_ULONG got = 0;
      rv = f_->C_FindObjects(session_, buf, 64, &got);
      if (rv != CKR_OK || got == 0) break;
      out.insert(out.end(), buf, buf + got);
      if (out.size() > 1024) break;
    }
    f_->C_FindObjectsFinal(session_);
    if (rv != CKR_OK)
      throw KeyStoreError(KeyStoreErrc::Backend, "searching token '" + token_label_ + "' failed: " + rv_text(rv));
    return out;
  }

  std::vector<std::uint8_t> attr_bytes(CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type) {
    CK_ATTRIBUTE a{type, nullptr, 0};
    if (f_->C_GetAttributeValue(session_, h, &a, 1) != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION ||
        a.ulValueLen > 4096)
      return {};
    std::vector<std::uint8_t> v(a.ulValueLen);
    a.pValue = v.data();
    if (f_->C_GetAttributeValue(session_, h, &a, 1) != CKR_OK) return {};
    v.resize(a.ulValueLen);
    return v;
  }

  std::optional<CK_ULONG> attr_ulong(CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type) {
    CK_ULONG v = 0;
    CK_ATTRIBUTE a{type, &v, sizeof v};
    if (f_->C_GetAttributeValue(session_, h, &a, 1) != CKR_OK) return std::nullopt;
    return v;
  }

  bool attr_true(CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type) {
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a{type, &v, sizeof v};
    return f_->C_GetAttributeValue(session_, h, &a, 1) == CKR_OK && v == CK_TRUE;
  }

  KeyInfo info(CK_OBJECT_HANDLE prv, std::string_view label) {
    KeyInfo ki{std::string(label), KeyType::EcP256, false};
    const auto kt = attr_ulong(prv, CKA_KEY_TYPE);
    bool known = false;
    if (kt && *kt == CKK_EC) {
      const auto p = attr_bytes(prv, CKA_EC_PARAMS);
      if (std::equal(p.begin(), p.end(), std::begin(kOidP256), std::end(kOidP256)))
        known = true, ki.type = KeyType::EcP256;
      if (std::equal(p.begin(), p.end(), std::begin(kOidP384), std::end(kOidP384)))
        known = true, ki.type = KeyType::EcP384;
    } else if (kt && *kt == CKK_RSA) {
      known = attr_bytes(prv, CKA_MODULUS).size() == 3072 / 8;
      ki.type = KeyType::Rsa3072;
    }
    if (!known) throw KeyStoreError(KeyStoreErrc::Backend, "key '" + std::string(label) + "' has an unsupported type");
    ki.non_exportable = attr_true(prv, CKA_TOKEN) && attr_true(prv, CKA_SENSITIVE) &&
                        !attr_true(prv, CKA_EXTRACTABLE) && attr_true(prv, CKA_ALWAYS_SENSITIVE) &&
                        attr_true(prv, CKA_NEVER_EXTRACTABLE);
    return ki;
  }

  CK_OBJECT_HANDLE seal_key(bool create) {
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    const auto h = find(cls, kSealKeyLabel);
    if (h.size() > 1)
      throw KeyStoreError(KeyStoreErrc::Backend, "more than one sealing key in token '" + token_label_ + "'");
    if (h.size() == 1) return h[0];
    if (!create)
      throw KeyStoreError(KeyStoreErrc::UnsealFailed,
                          "unseal failed: token '" + token_label_ + "' has no sealing key (sealed by another store?)");
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG len = 32;
    std::uint8_t id[kIdSize];
    if (RAND_bytes(id, sizeof id) != 1) throw KeyStoreError(KeyStoreErrc::Backend, "CSPRNG failure");
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_ENCRYPT, &yes, sizeof yes},
        {CKA_DECRYPT, &yes, sizeof yes},
        {CKA_WRAP, &no, sizeof no},
        {CKA_UNWRAP, &no, sizeof no},
        {CKA_SIGN, &no, sizeof no},
        {CKA_VERIFY, &no, sizeof no},
        {CKA_DERIVE, &no, sizeof no},
        {CKA_LABEL, const_cast<char*>(kSealKeyLabel), std::strlen(kSealKeyLabel)},
        {CKA_ID, id, sizeof id},
    };
    CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
    CK_OBJECT_HANDLE key = 0;
    const CK_RV rv = f_->C_GenerateKey(session_, &mech, t, sizeof t / sizeof t[0], &key);
    if (rv != CKR_OK)
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "creating the sealing key in token '" + token_label_ + "' failed: " + rv_text(rv));
    return key;
  }

  std::string token_label_;
  std::shared_ptr<Module> mod_;
  CK_FUNCTION_LIST* f_ = nullptr;
  PKCS11_SLOT* slot_ = nullptr;
  CK_SLOT_ID slot_id_ = 0;
  CK_SESSION_HANDLE session_ = 0;
  std::mutex mu_;
};

}  // namespace

std::unique_ptr<KeyStore> open_pkcs11_key_store(const Pkcs11KeyStoreOptions& opt) {
  return std::make_unique<Pkcs11KeyStore>(opt);
}

}  // namespace cg::security
