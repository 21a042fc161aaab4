#include "net/cluster_view.hpp"

#include "net/metrics.hpp"

namespace rheo {

std::string with_label(const std::string& text, const std::string& name, const std::string& value) {
  const std::string label = name + "=\"" + label_value(value) + "\"";
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (!line.empty() && line[0] != '#') {
      // A sample: NAME{labels} VALUE or NAME VALUE.
      std::size_t cut = line.find_first_of("{ ");
      if (cut == std::string_view::npos) {
        out.append(line);
      } else if (line[cut] == '{') {
        out.append(line.substr(0, cut + 1)).append(label);
        if (line[cut + 1] != '}') out += ',';
        out.append(line.substr(cut + 1));
      } else {
        out.append(line.substr(0, cut)).append("{").append(label).append("}");
        out.append(line.substr(cut));
      }
    } else {
      out.append(line);
    }
    if (end < text.size()) out += '\n';
    pos = end + 1;
  }
  return out;
}

} // namespace rheo
